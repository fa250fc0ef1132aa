"""Integrations with web frameworks and database libraries: ``django``, ``flask``, ``sqlalchemy``.

Each is an optional extra (``pip install pyresque[django]``); importing one without its framework
installed raises ImportError, and nothing outside ``contrib`` imports them.
"""
