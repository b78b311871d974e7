"""The Python side of Python and Numba operators.

The operator runtime (the process of a runtime node) embeds the CPython that Python nodes run with
and calls these, holding the GIL:

- `load_python(path, operator_id, node_handle)` imports a dora-shaped operator file (a class
  `Operator` with `on_event(self, dora_event, send_output)` returning a `DoraStatus`) and makes its
  `Operator`; each event then goes to `PythonOperator.on_event(event_handle)`.
- `load_numba(path, function, operator_id, python)` imports a module and gives the address and
  signature of its numba `@cfunc`, which the runtime then calls with no interpreter in the way.

Each returns a tuple whose first item is "" or why it failed (with the traceback), so the runtime
needs no exception handling of its own.
"""

import importlib.util
import inspect
import os
import re
import sys
import traceback

from ._native import ffi
from .node import Event, Node

# What must live as long as its operator: a cfunc's address is valid while the cfunc object is.
_kept = {}

CONTINUE, STOP, STOP_ALL, FAILED = 0, 1, 2, 3


def _module(path, operator_id):
    """Imports the file at `path` as a module of its own (one per operator)."""
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its sibling modules import as they would in a node
    name = "apus_operator_" + re.sub(r"\W", "_", operator_id)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ImportError(f"'{path}' is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _raised(what):
    return f"{what}:\n" + traceback.format_exc().rstrip()


class PythonOperator:
    """One dora-shaped operator: its `Operator` instance and the dora node it sends through."""

    def __init__(self, operator, node):
        self._node = node
        self._operator = operator
        self._on_event = operator.on_event
        self._send_output = node.send_output
        self.error = ""

    def on_event(self, handle):
        """Passes the event at `handle` (which it then owns) to on_event; the status it returned,
        or FAILED with `error` saying why."""
        try:
            event = self._node._event(Event(ffi.cast("apus_event_t *", handle)))
            status = self._on_event(event, self._send_output)
        except BaseException:
            self.error = _raised("on_event raised an exception")
            return FAILED
        value = getattr(status, "value", status)
        if value is None:
            return CONTINUE
        if isinstance(value, int) and not isinstance(value, bool) and value in (CONTINUE, STOP, STOP_ALL):
            return value
        self.error = f"on_event returned {status!r}: return DoraStatus.CONTINUE, DoraStatus.STOP or DoraStatus.STOP_ALL"
        return FAILED

    def drop(self):
        """Lets the operator go (its __del__, if any, runs now)."""
        self._operator = self._on_event = None


def load_python(path, operator_id, node_handle):
    """("", PythonOperator) for the operator in `path`, or (why not,)."""
    try:
        import dora
    except ImportError:
        return (_raised("cannot import dora, which Python operators use (`apus run` provides it)"),)
    try:
        module = _module(path, operator_id)
    except BaseException:
        return (_raised(f"cannot import '{path}'"),)
    factory = getattr(module, "Operator", None)
    if not isinstance(factory, type):
        return (f"'{path}' defines no class Operator (dora's shape: a class Operator whose "
                "on_event(self, dora_event, send_output) returns a DoraStatus)",)
    if not callable(getattr(factory, "on_event", None)):
        return (f"the class Operator in '{path}' has no on_event(self, dora_event, send_output) method",)
    try:
        node = dora.Node(_apus_node=Node(_borrowed=ffi.cast("apus_node_t *", node_handle)))
        operator = factory()
    except BaseException:
        return (_raised("Operator() raised an exception"),)
    return ("", PythonOperator(operator, node))


def load_numba(path, function, operator_id, python):
    """("", address, signature, argument names) of the numba @cfunc `function` in `path`, or
    (why not,). Numba is imported only here, for dataflows that have Numba operators."""
    try:
        from numba.core.ccallback import CFunc
    except ImportError:
        return (f"numba is not installed for {python}: {python} -m pip install numba",)
    try:
        module = _module(path, operator_id)
    except BaseException:
        return (_raised(f"cannot import '{path}'"),)
    cfunc = getattr(module, function, None)
    if cfunc is None:
        found = sorted(name for name, value in vars(module).items() if isinstance(value, CFunc))
        listed = f"its @cfunc functions: {', '.join(found)}" if found else "it has no @cfunc functions"
        return (f"'{path}' has no function '{function}' ({listed})",)
    if not isinstance(cfunc, CFunc):
        return (f"'{function}' in '{path}' is not a numba @cfunc (decorate it with @cfunc(signature))",)
    names = list(inspect.signature(cfunc._pyfunc).parameters)
    _kept[operator_id] = cfunc
    return ("", cfunc.address, str(cfunc._sig), ",".join(names))


def drop_numba(operator_id):
    """Lets the cfunc of `operator_id` go, once the runtime calls it no more."""
    _kept.pop(operator_id, None)
