"""WSGI entry point for gunicorn, PythonAnywhere and uWSGI: `from wsgi import application`."""

from backend import create_app

application = create_app()
