"""reconciler: keep an AI gateway's configuration in git as YAML manifests."""

__version__ = "0.1.0"
