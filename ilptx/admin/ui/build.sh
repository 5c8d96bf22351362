#!/usr/bin/env bash
# Rebuild the dashboard's static files (ilptx/admin/ui/static/, committed) from src/ and the
# libraries pinned in package-lock.json. Only needed after changing src/ or a library version.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run build
