"""`python -m notifier`: serve the notifier service."""

from notifier.app import create_app
from notifier.config import NotifierSettings
from sbkit.serve import serve

if __name__ == "__main__":
    settings = NotifierSettings()
    serve(lambda: create_app(settings), settings)
