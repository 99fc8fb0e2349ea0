"""`python -m crm`: serve the crm service."""

from crm.app import create_app
from crm.config import CrmSettings
from sbkit.serve import serve

if __name__ == "__main__":
    settings = CrmSettings()
    serve(lambda: create_app(settings), settings)
