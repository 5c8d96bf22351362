"""Built-in middlewares, one per module, named as in the reference connector.

Incoming pipeline (outermost first): ``errorHandler``. Outgoing pipeline: ``expire`` →
``validateFulfillment``. Issue #3 adds the reference's full set.
"""
