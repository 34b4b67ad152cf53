"""The dashboard at /ui: server-rendered pages (Jinja2) with htmx, over the domains' services.

A view parses its request, calls services and renders a template; it never queries the
database itself. Sessions are signed cookies bound to an API key (auth.py).
"""
