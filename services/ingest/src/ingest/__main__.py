"""`python -m ingest`: serve the ingest service."""

from ingest.app import create_app
from ingest.config import IngestSettings
from sbkit.serve import serve

if __name__ == "__main__":
    settings = IngestSettings()
    serve(lambda: create_app(settings), settings)
