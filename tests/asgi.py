import faulthandler
import os
import signal

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

# A test that finds a server hung sends SIGUSR1 first: every thread's stack lands in the log.
faulthandler.register(signal.SIGUSR1, all_threads=True)

application = get_asgi_application()
