"""`python -m analytics`: serve the analytics service."""

from analytics.app import create_app
from analytics.config import AnalyticsSettings
from sbkit.serve import serve

if __name__ == "__main__":
    settings = AnalyticsSettings()
    serve(lambda: create_app(settings), settings)
