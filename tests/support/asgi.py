import faulthandler
import os
import signal

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.settings")

# A test that finds a server hung sends SIGUSR1 first: every thread's stack lands in the log.
faulthandler.register(signal.SIGUSR1, all_threads=True)

# Started under a background job (`make test &`, `nohup ... &`), the server inherits an ignored
# SIGINT, and Twisted installs its handler only over the default one: Daphne would then ignore
# SIGINT, unlike a server started from a terminal or a process manager, which the tests mimic.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

application = get_asgi_application()
