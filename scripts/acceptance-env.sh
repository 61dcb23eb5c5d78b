#!/usr/bin/env bash
# Creates .venv-accept with the real Azure dynamic-sessions client packages from PyPI, for the
# acceptance tests (idempotent and quiet).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-accept/bin/python ] || ! .venv-accept/bin/python -c "import langchain_azure_dynamic_sessions, llama_index.tools.azure_code_interpreter" 2>/dev/null; then
  echo "acceptance-env: installing langchain-azure-dynamic-sessions and llama-index-tools-azure-code-interpreter"
  python3 -m venv .venv-accept
  .venv-accept/bin/pip install -q --disable-pip-version-check \
    langchain-azure-dynamic-sessions==1.0.4 llama-index-tools-azure-code-interpreter==0.7.0
fi
