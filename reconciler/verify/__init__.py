"""`reconciler verify`: prove that every key, base URL and model id works, before users find out.

families.py  how each provider type lists its models (requests and answers, no I/O)
check.py     the checks: keys in parallel, retries, the deadline, model ids, --live
report.py    verdicts and diagnostics as plain data (`to_dict` is the JSON output)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reconciler.secrets import SecretResolver
from reconciler.verify.check import Options, Through, Verifier
from reconciler.verify.report import VerifyReport

__all__ = ["Options", "Through", "Verifier", "VerifyReport", "through_coder", "verify_paths"]


def through_coder(url: str, token_file: str | None, environ: Mapping[str, str] | None = None) -> Through:
    """Coder's URL and token, read exactly as the Coder store reads them (coder+https://, or
    coder+http:// for loopback hosts only; CODER_SESSION_TOKEN or --token-file)."""
    import os

    from reconciler.stores.coder.store import parse_url, session_token

    _, base_url = parse_url(url)
    return Through(base_url, session_token(token_file, os.environ if environ is None else environ))


def verify_paths(paths: Sequence[str], options: Options, resolver: SecretResolver | None = None,
                 through: Through | None = None) -> VerifyReport:
    """Validate the manifests (InvalidManifests when they have errors), then verify them."""
    from reconciler.run import InvalidManifests
    from reconciler.validate import validate_paths

    validation = validate_paths(paths, use_cache=False)  # verify leaves nothing behind
    if not validation.ok():
        raise InvalidManifests(validation)
    return Verifier(options, resolver or SecretResolver(), through).run(validation.manifests)
