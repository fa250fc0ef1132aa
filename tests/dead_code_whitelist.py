"""Names in src/ that only a framework, a template or a protocol calls: the dead-code check
(tests/unit/test_dead_code.py) reads this file as code that uses them.

Each line names one, with who uses it. Add a line only for such a name; code nobody calls is
removed instead.
"""

# ruff: noqa: B018, F821
_: object = object()

__getattr__  # module __getattr__: Python calls it (pyresque, pyresque.worker)
frame  # the signature of a signal handler
StoreFactory  # a type alias, used in annotations
Literal  # used inside a string annotation (pool/config.py)
PyresqueConfig  # Django's app registry loads it (INSTALLED_APPS)
verbose_name  # read by Django
pool_from_settings  # named on a command line: --config-loader pyresque.contrib.django.conf:...
_.in_atomic_block  # Django's connection state, set to let a connection go
_.needs_rollback  # idem
_.closed_in_transaction  # idem
help  # read by Django's management commands
_.run_from_argv  # called by Django's management framework
_.handle_term  # the master dispatches signals to handle_<name>
_.handle_int
_.handle_quit
_.handle_hup
_.handle_ttin
_.handle_ttou
_.handle_usr1
_.handle_usr2
_.handle_cont
_.handle_io
_.do_GET  # http.server calls it
_.log_message  # http.server calls it
_.allow_reuse_address  # read by socketserver
_.prev_start  # read by the dashboard's templates
_.next_start
_.mean_ms
_.setup_once  # sentry_sdk.init calls an integration's
_.failed_outside  # jobs.tracing.notify calls a tracer's moments by name
pool_main  # the resque-pool console script (pyproject.toml)
