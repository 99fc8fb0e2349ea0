"""`python -m routing`: serve the routing service."""

from routing.app import create_app
from routing.config import RoutingSettings
from sbkit.serve import serve

if __name__ == "__main__":
    settings = RoutingSettings()
    serve(lambda: create_app(settings), settings)
