"""Server-rendered pages: Jinja2 templates, vendored NHS.UK frontend and htmx, and their Litestar wiring.

``procurement.web.setup`` gives the template config, the /static router and the filters;
``procurement.web.pages`` gives page handlers that need nothing from the database.
"""
