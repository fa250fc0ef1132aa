"""Django integration: add ``"pyresque.contrib.django"`` to ``INSTALLED_APPS``.

It gives ``manage.py resque_pool`` (the pool with the project preloaded in the master) and
``manage.py resque_work``, reads ``settings.PYRESQUE``, imports ``jobs.py`` from every installed app,
and makes database connections safe across ``fork``: the master closes its connections before
forking, each worker drops what it inherited without a word on the shared socket and opens its own,
and stale connections are closed around every job as Django does around every request.
"""
