"""Importers that write a first set of manifests from what a deployment already has.

- `envvars`: the deprecated `CODER_AI_GATEWAY_PROVIDER_<N>_*` / `CODER_AIBRIDGE_PROVIDER_<N>_*`
  variables -> Provider manifests whose secrets reference the same variables.
- `litellm`: a LiteLLM `model_prices_and_context_window.json` -> a PriceCatalog.
"""
