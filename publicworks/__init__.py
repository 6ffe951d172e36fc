"""public-works: blue-green deploys of civic.band's docker-compose services, over one SSH connection."""

__version__ = "0.2.0"
