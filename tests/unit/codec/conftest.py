"""Tests of the sans-IO codec (:mod:`ilptx.codec`).

No fixtures here. This file makes pytest put this directory on ``sys.path`` (rootdir-relative
"prepend" import mode, no ``__init__.py``), so the test modules can ``import
codec_strategies``.
"""
