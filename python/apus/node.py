"""Node and Event: a Pythonic layer over the C API (apus._native, generated from include/apus.h)."""

import math
import threading
import time
import weakref

import numpy as np

from ._native import ffi, lib


class ApusError(Exception):
    """A failed call into the C API. `status` is its name, e.g. "APUS_ERROR_UNKNOWN_OUTPUT"."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _error():
    status = lib.apus_last_status()
    name = ffi.string(lib.apus_status_name(status)).decode()
    return ApusError(name, ffi.string(lib.apus_last_error()).decode("utf-8", "replace"))


def _check(status):
    if status != lib.APUS_OK:
        raise _error()


def _text(pointer):
    if pointer == ffi.NULL:
        raise _error()
    return ffi.string(pointer).decode("utf-8")


# Element types: the position is the C API's APUS_TYPE_* number; 12 is utf8 (a str in Python).
_DTYPES = [np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32,
                                 np.int64, np.float16, np.float32, np.float64, np.bool_)]
_TYPE_OF = {dtype: code for code, dtype in enumerate(_DTYPES)}
_TYPESTRS = [dtype.str for dtype in _DTYPES]
_UTF8 = lib.APUS_TYPE_UTF8

_EVENT_TYPES = {
    lib.APUS_EVENT_INPUT: "INPUT",
    lib.APUS_EVENT_INPUT_CLOSED: "INPUT_CLOSED",
    lib.APUS_EVENT_STOP: "STOP",
    lib.APUS_EVENT_NODE_FAILED: "NODE_FAILED",
    lib.APUS_EVENT_ERROR: "ERROR",
}

_LOG_LEVELS = {"error": lib.APUS_LOG_ERROR, "warn": lib.APUS_LOG_WARN, "warning": lib.APUS_LOG_WARN,
               "info": lib.APUS_LOG_INFO, "debug": lib.APUS_LOG_DEBUG}

# How many element type and shape descriptions a node keeps for sending (Node._layout).
_LAYOUTS = 64

# How long one wait in C lasts at most, so Python can act on signals (Ctrl-C) in between.
_WAIT_SLICE_NS = 100_000_000


class _Payload:
    """What numpy makes an INPUT's array from (`__array_interface__`: the address, shape and type
    of the payload, read-only): one object instead of a buffer, a memoryview and a finalizer."""

    __slots__ = ("__array_interface__", "_event")

    def __init__(self, event, address, shape, typestr):
        self._event = event
        self.__array_interface__ = {"data": (address, True), "shape": shape, "typestr": typestr, "version": 3}


class Event:
    """One event. For an INPUT, `value` views the producer's shared memory; the sample stays pinned
    while the event or any array from `value` lives, or until `release()`."""

    __slots__ = ("_handle", "type", "_metadata", "_value", "__weakref__")

    def __init__(self, handle, code=None):
        self._handle = handle
        self.type = _EVENT_TYPES.get(lib.apus_event_type(handle) if code is None else code, "ERROR")
        self._metadata = None
        self._value = None

    def _live(self):
        if self._handle is None:
            raise ApusError("APUS_ERROR_INVALID_HANDLE", "the event was released")
        return self._handle

    @property
    def id(self):
        """INPUT and INPUT_CLOSED: the input's id. NODE_FAILED: the failed node's id. Else ""."""
        return _text(lib.apus_event_id(self._live()))

    @property
    def message(self):
        """ERROR and NODE_FAILED: what happened. Else ""."""
        return _text(lib.apus_event_message(self._live()))

    error = message

    @property
    def timestamp(self):
        """When the message was sent, in CLOCK_MONOTONIC nanoseconds (0 for other events); from
        another machine, its send time through the machines' wall clocks, never after its arrival."""
        return lib.apus_event_timestamp(self._live())

    @property
    def value(self):
        """INPUT: a read-only numpy array of the payload in place, with the dtype and shape it was
        sent with; a str for text. None for other events."""
        if self.type != "INPUT":
            return None
        cached = self._value() if self._value is not None else None
        if cached is not None:
            return cached
        view = ffi.new("apus_input_view_t *")
        _check(lib.apus_event_view(self._live(), view))
        code, length = view.type, view.length
        if code == _UTF8:
            return ffi.unpack(ffi.cast("char *", view.data), length).decode("utf-8", "replace")
        rank = view.rank
        if rank == 0:
            shape = (length // _DTYPES[code].itemsize,)
        else:
            dims = view.dims
            shape = tuple([dims[i] for i in range(rank)])
        # numpy reads the layout from the holder and keeps it as the array's base: the holder
        # refers to this event, so the event (and its sample) lives as long as the array.
        array = np.asarray(_Payload(self, int(ffi.cast("uintptr_t", view.data)), shape, _TYPESTRS[code]))
        self._value = weakref.ref(array)
        return array

    @property
    def metadata(self):
        """The sender's parameters: a dict of bool, int, float, str and lists of those."""
        if self._metadata is None:
            self._metadata = _read_parameters(self._live()) if self.type == "INPUT" else {}
        return self._metadata

    def release(self):
        """Gives the sample back to its producer now. Arrays from `value` must not be used after."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            lib.apus_event_free(handle)

    def __del__(self):
        try:
            if self._handle is not None:  # release(), inline: one call less per message
                lib.apus_event_free(self._handle)
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def __repr__(self):
        if self._handle is None:
            return f"<Event {self.type} (released)>"
        if self.type in ("INPUT", "INPUT_CLOSED"):
            return f"<Event {self.type} {self.id!r}>"
        if self.type in ("NODE_FAILED", "ERROR"):
            return f"<Event {self.type} {self.message!r}>"
        return f"<Event {self.type}>"


def _read_parameters(handle):
    parameters = {}
    key = ffi.new("const char **")
    kind = ffi.new("apus_param_type_t *")
    for index in range(lib.apus_event_param_count(handle)):
        _check(lib.apus_event_param_at(handle, index, key, kind))
        name = ffi.string(key[0]).decode("utf-8")
        parameters[name] = _read_parameter(handle, key[0], kind[0])
    return parameters


def _read_parameter(handle, key, kind):
    if kind == lib.APUS_PARAM_BOOL:
        out = ffi.new("bool *")
        _check(lib.apus_event_param_bool(handle, key, out))
        return bool(out[0])
    if kind == lib.APUS_PARAM_INT:
        out = ffi.new("int64_t *")
        _check(lib.apus_event_param_int(handle, key, out))
        return int(out[0])
    if kind == lib.APUS_PARAM_FLOAT:
        out = ffi.new("double *")
        _check(lib.apus_event_param_float(handle, key, out))
        return float(out[0])
    if kind == lib.APUS_PARAM_STRING:
        out = ffi.new("const char **")
        length = ffi.new("size_t *")
        _check(lib.apus_event_param_string(handle, key, out, length))
        return ffi.unpack(out[0], length[0]).decode("utf-8")
    count = ffi.new("size_t *")
    if kind == lib.APUS_PARAM_BOOL_LIST:
        out = ffi.new("const bool **")
        _check(lib.apus_event_param_bools(handle, key, out, count))
        return [bool(out[0][i]) for i in range(count[0])]
    if kind == lib.APUS_PARAM_INT_LIST:
        out = ffi.new("const int64_t **")
        _check(lib.apus_event_param_ints(handle, key, out, count))
        return [int(out[0][i]) for i in range(count[0])]
    if kind == lib.APUS_PARAM_FLOAT_LIST:
        out = ffi.new("const double **")
        _check(lib.apus_event_param_floats(handle, key, out, count))
        return [float(out[0][i]) for i in range(count[0])]
    out = ffi.new("const char *const **")
    _check(lib.apus_event_param_strings(handle, key, out, count))
    return [ffi.string(out[0][i]).decode("utf-8") for i in range(count[0])]


def _c_text(text, what):
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    if "\0" in text:
        raise ValueError(f"{what} {text!r} contains a NUL character")
    return text.encode("utf-8")


def _write_parameters(metadata, parameters):
    for key, value in parameters.items():
        name = _c_text(key, "a metadata key")
        if isinstance(value, (bool, np.bool_)):
            status = lib.apus_metadata_set_bool(metadata, name, bool(value))
        elif isinstance(value, (int, np.integer)):
            if not -(1 << 63) <= int(value) < (1 << 63):
                raise OverflowError(f"metadata {key!r}: {value} does not fit a 64-bit int")
            status = lib.apus_metadata_set_int(metadata, name, int(value))
        elif isinstance(value, (float, np.floating)):
            status = lib.apus_metadata_set_float(metadata, name, float(value))
        elif isinstance(value, str):
            status = lib.apus_metadata_set_string(metadata, name, _c_text(value, f"metadata {key!r}"))
        elif isinstance(value, (list, tuple, np.ndarray)):
            status = _write_list(metadata, key, name, list(value))
        else:
            raise TypeError(f"metadata {key!r}: {type(value).__name__} is not one of bool, int, float, str "
                            "or a list of those")
        _check(status)


def _write_list(metadata, key, name, values):
    if all(isinstance(v, (bool, np.bool_)) for v in values) and values:
        return lib.apus_metadata_set_bools(metadata, name, [bool(v) for v in values], len(values))
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return lib.apus_metadata_set_ints(metadata, name, [int(v) for v in values], len(values))
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return lib.apus_metadata_set_floats(metadata, name, [float(v) for v in values], len(values))
    if all(isinstance(v, str) for v in values):
        texts = [ffi.new("char[]", _c_text(v, f"metadata {key!r}")) for v in values]
        return lib.apus_metadata_set_strings(metadata, name, texts, len(texts))
    raise TypeError(f"metadata {key!r}: a list must hold only bools, only numbers, or only strs")


class _Metadata:
    """An apus_metadata_t for one send, freed when done."""

    def __init__(self, code, shape, parameters):
        if code == 0 and shape is None and not parameters:
            self.handle = ffi.NULL  # plain bytes: the C API's default, nothing to build
            return
        self.handle = lib.apus_metadata_new()
        if self.handle == ffi.NULL:
            raise MemoryError("apus_metadata_new")
        try:
            _check(lib.apus_metadata_set_type(self.handle, code))
            if shape is not None:
                _check(lib.apus_metadata_set_shape(self.handle, [int(d) for d in shape], len(shape)))
            if parameters:
                _write_parameters(self.handle, parameters)
        except BaseException:
            self.free()
            raise

    def free(self):
        if self.handle is not None and self.handle != ffi.NULL:
            lib.apus_metadata_free(self.handle)
            self.handle = None


def _payload(data):
    """(buffer, element type, shape or None) of what send_output accepts."""
    if isinstance(data, str):
        return data.encode("utf-8"), _UTF8, None
    if isinstance(data, (bytes, bytearray)):
        return data, 0, None
    if isinstance(data, memoryview):
        if not data.c_contiguous:
            raise ValueError("send_output: the memoryview is not contiguous")
        return data.cast("B") if data.ndim != 1 or data.format != "B" else data, 0, None
    if isinstance(data, np.ndarray):
        code = _TYPE_OF.get(data.dtype)  # a non-native byte order compares unequal, so it is refused
        if code is None:
            raise TypeError(f"send_output: numpy dtype {data.dtype} is not one of "
                            + ", ".join(str(d) for d in _DTYPES) + " (native byte order)")
        return np.ascontiguousarray(data), code, data.shape if data.ndim != 1 else None  # 1-D: the default
    to_numpy = getattr(data, "to_numpy", None)  # e.g. a pyarrow array
    if to_numpy is not None:
        return _payload(to_numpy(zero_copy_only=False))
    raise TypeError(f"send_output: cannot send {type(data).__name__}; send bytes, bytearray, memoryview, "
                    "str or a numpy array")


class Reservation:
    """A sample reserved by `Node.reserve`: `buffer` is a writable memoryview of its bytes in shared
    memory. `send` or `discard` it once nothing views the buffer any more; a reservation dropped
    without either is given back."""

    def __init__(self, node, sample, length):
        self._node = node
        self._sample = sample
        self.buffer = memoryview(ffi.buffer(lib.apus_sample_data(sample), length))

    def _take(self, check_views=True):
        if self._sample is None:
            raise ApusError("APUS_ERROR_INVALID_HANDLE", "the sample was sent or discarded already")
        try:
            if check_views:
                self.buffer.release()
        except BufferError:
            raise ApusError("APUS_ERROR_INVALID_ARGUMENT",
                            "buffer view(s) still open: delete every array or memoryview made from the sample's "
                            "buffer before sending it") from None
        sample, self._sample = self._sample, None
        return sample

    def send(self, metadata=None, code=0, shape=None, check_views=True):
        """Sends the sample: `metadata` as for send_output, `code` its element type (an APUS_TYPE_*
        number; bytes by default) and `shape` its dimensions. `check_views=False` skips the check
        that no view of the buffer is left (`allocate`'s array outlives its `with` block)."""
        sample = self._take(check_views)
        try:
            described = _Metadata(code, shape, metadata)
        except BaseException:
            lib.apus_sample_discard(sample)
            raise
        try:
            _check(lib.apus_node_send_sample(self._node._live(), sample, described.handle))
        finally:
            described.free()

    def discard(self):
        """Gives the sample back unsent."""
        lib.apus_sample_discard(self._take(check_views=False))

    def __del__(self):
        if getattr(self, "_sample", None) is not None:
            try:
                self.discard()
            except Exception:  # views still open, or interpreter shutdown: the node's exit frees it
                pass


class _Allocation:
    """`Node.allocate`'s `with` block: a class rather than a generator, which cost a hop a few
    microseconds."""

    __slots__ = ("_node", "_output", "_shape", "_dtype", "_code", "_metadata", "_reservation")

    def __init__(self, node, output_id, shape, dtype, code, metadata):
        self._node, self._output, self._shape, self._dtype = node, output_id, shape, dtype
        self._code, self._metadata, self._reservation = code, metadata, None

    def __enter__(self):
        self._reservation = self._node.reserve(self._output, math.prod(self._shape) * self._dtype.itemsize)
        return np.frombuffer(self._reservation.buffer, dtype=self._dtype).reshape(self._shape)

    def __exit__(self, kind, error, trace):
        reservation, self._reservation = self._reservation, None
        if kind is not None:
            reservation.discard()
            return False
        # A flat array needs no shape: it is the default, and bytes then need no metadata at all.
        shape = None if len(self._shape) == 1 else self._shape
        reservation.send(self._metadata, code=self._code, shape=shape, check_views=False)
        return False


class Node:
    """This process's node in the dataflow `apus run` started it in.

    `next()` and iteration are for one thread at a time; `send_output`, `allocate`, `close_output`
    and `log` may be called from any thread."""

    def __init__(self, _borrowed=None):
        # _borrowed: the handle of a Python operator's view of its runtime node (apus.operators),
        # which the runtime owns: `close` leaves it alone.
        handle = lib.apus_node_init_from_env() if _borrowed is None else _borrowed
        if handle == ffi.NULL:
            raise _error()
        self._handle = handle
        self._owned = _borrowed is None
        self.id = _text(lib.apus_node_id(handle))
        self.inputs = [_text(lib.apus_node_input_id(handle, i)) for i in range(lib.apus_node_input_count(handle))]
        # Where each input comes from: "node/output", or a timer such as "apus/timer/millis/100".
        self.sources = [_text(lib.apus_node_input_source(handle, i)) for i in range(len(self.inputs))]
        self.outputs = [_text(lib.apus_node_output_id(handle, i)) for i in range(lib.apus_node_output_count(handle))]
        self._output_names = {name: name.encode("utf-8") for name in self.outputs}
        self._layouts = {}
        self._batch = None  # next_many's array of event handles

    def _live(self):
        if self._handle is None:
            raise ApusError("APUS_ERROR_INVALID_HANDLE", "the node was closed")
        return self._handle

    def _layout(self, code, shape):
        """An apus_metadata_t of only an element type and a shape, kept for the node's next sends;
        NULL for plain bytes, and None once _LAYOUTS are kept (the caller describes each send)."""
        if code == 0 and shape is None:
            return ffi.NULL
        key = (code, shape)
        handle = self._layouts.get(key)
        if handle is None and len(self._layouts) < _LAYOUTS:
            made = _Metadata(code, shape, None).handle
            handle = self._layouts.setdefault(key, made)
            if handle is not made:  # another thread made it first
                lib.apus_metadata_free(made)
        return handle

    def _free_layouts(self):
        layouts, self._layouts = self._layouts, {}
        for handle in layouts.values():
            lib.apus_metadata_free(handle)

    def _output(self, output_id):
        return self._output_names.get(output_id) or _c_text(output_id, "the output id")

    # Receiving

    def next(self, timeout=None):
        """The next event; None when `timeout` seconds passed without one, or once the event stream
        has ended (after STOP). The GIL is released while waiting."""
        handle = self._live()

        def take(wait):
            event = lib.apus_node_next(handle, wait)
            return None if event == ffi.NULL else Event(event)

        return self._waiting(timeout, take)

    def next_many(self, limit=256, timeout=None):
        """Every event ready now, up to `limit`, as a list, after waiting as `next` does for the
        first: one call into the library for many messages. None when `timeout` seconds passed
        without an event, or once the stream has ended (after STOP)."""
        handle = self._live()
        limit = int(limit)
        if limit < 1:
            raise ValueError(f"next_many: limit {limit} is not a positive number")
        if self._batch is None or len(self._batch[0]) < limit:
            size = max(limit, 256)
            self._batch = (ffi.new("apus_event_t *[]", size), ffi.new("apus_event_type_t[]", size))
        events, types = self._batch

        def take(wait):
            count = lib.apus_node_next_many(handle, events, types, limit, wait)
            return [Event(events[i], types[i]) for i in range(count)] if count else None

        return self._waiting(timeout, take)

    def _waiting(self, timeout, take):
        """What `take(nanoseconds)` returns (None: nothing within them), called with slices of at
        most _WAIT_SLICE_NS, so Python can act on signals between them, until `timeout` seconds
        passed (None: no limit) or the stream has ended; then None."""
        deadline = None if timeout is None else time.monotonic_ns() + max(0, int(timeout * 1e9))
        while True:
            wait = _WAIT_SLICE_NS if deadline is None else max(0, min(_WAIT_SLICE_NS, deadline - time.monotonic_ns()))
            taken = take(wait)
            if taken is not None:
                return taken
            status = lib.apus_last_status()
            if status == lib.APUS_FINISHED:
                return None
            if status != lib.APUS_TIMEOUT:
                raise _error()
            if deadline is not None and time.monotonic_ns() >= deadline:
                return None

    def __iter__(self):
        """Events until the stream ends after STOP. Ctrl-C while waiting ends the loop too."""
        try:
            while (event := self.next()) is not None:
                yield event
                del event  # the sample is released now unless the loop body kept the event
        except KeyboardInterrupt:
            return

    # Sending

    def send_output(self, output_id, data, metadata=None):
        """Sends `data` (bytes, bytearray, memoryview, str or a numpy array: its dtype and shape travel
        along) on `output_id`, copied once into shared memory, with `metadata` (a dict of bool, int,
        float, str and lists of those)."""
        buffer, code, shape = _payload(data)
        output = self._output(output_id)
        layout = None if metadata else self._layout(code, shape)
        if layout is not None:  # the type and shape alone: described once per node, not per message
            pointer = ffi.from_buffer(buffer)
            _check(lib.apus_node_send(self._live(), output, pointer, len(pointer), layout))
            return
        described = _Metadata(code, shape, metadata)
        try:
            pointer = ffi.from_buffer(buffer)
            _check(lib.apus_node_send(self._live(), output, pointer, len(pointer), described.handle))
        finally:
            described.free()

    def send_many(self, output_id, items, metadata=None):
        """Sends each of `items` as a message of its own on `output_id`, in one call into the
        library: a numpy array of two or more dimensions sends one message per row (`items[i]`,
        with the row's dtype and shape), any other sequence one message per element (anything
        `send_output` takes). `metadata` is None, one dict for every message, or a list of dicts,
        one per message. Every message gets its own send timestamp. Returns how many were sent
        (all, unless it raises: then the error says how many went)."""
        output = self._output(output_id)
        if isinstance(items, np.ndarray) and items.ndim >= 2:
            rows = np.ascontiguousarray(items)
            code = _TYPE_OF.get(rows.dtype)
            if code is None:
                raise TypeError(f"send_many: numpy dtype {rows.dtype} is not one of " + ", ".join(str(d) for d in _DTYPES)
                                + " (native byte order)")
            count, row_bytes = rows.shape[0], rows[0].nbytes if rows.shape[0] else 0
            shape = rows.shape[1:] if rows.ndim > 2 else None
            keep = [rows]
            base = int(ffi.cast("uintptr_t", ffi.from_buffer(rows))) if rows.nbytes else 0
            addresses = np.arange(count, dtype=np.uintp) * row_bytes + base
            lengths = np.full(count, row_bytes, dtype=np.uintp)
            layouts = [(code, shape)] * count
        else:
            payloads = [_payload(item) for item in items]
            count = len(payloads)
            keep = [ffi.from_buffer(buffer) for buffer, _, _ in payloads]
            addresses = np.fromiter((int(ffi.cast("uintptr_t", p)) for p in keep), dtype=np.uintp, count=count)
            lengths = np.fromiter((len(p) for p in keep), dtype=np.uintp, count=count)
            layouts = [(code, shape) for _, code, shape in payloads]
        shared = None  # (parameters,) when every message has the same description
        if isinstance(metadata, (list, tuple)):
            if len(metadata) != count:
                raise ValueError(f"send_many: {len(metadata)} metadata dicts for {count} messages")
            parameters = metadata
        elif metadata is None or isinstance(metadata, dict):
            parameters = [metadata] * count
            if count and len(set(layouts)) == 1:
                shared = metadata or {}
        else:
            raise TypeError(f"send_many: metadata must be None, a dict or a list of dicts, not {type(metadata).__name__}")
        if count == 0:
            return 0
        made = []  # described for this call: freed at the end
        try:
            def describe(code, shape, extra):
                layout = None if extra else self._layout(code, shape)
                if layout is None:
                    made.append(_Metadata(code, shape, extra))
                    layout = made[-1].handle
                return int(ffi.cast("uintptr_t", layout))

            if shared is not None:  # one description for every message
                handles = np.full(count, describe(*layouts[0], shared), dtype=np.uintp)
            else:
                handles = np.fromiter((describe(code, shape, extra) for (code, shape), extra in zip(layouts, parameters)),
                                      dtype=np.uintp, count=count)
            sent = ffi.new("size_t *")
            status = lib.apus_node_send_many(
                self._live(), output, ffi.cast("const void *const *", ffi.from_buffer(addresses)),
                ffi.cast("const size_t *", ffi.from_buffer(lengths)),
                ffi.cast("const apus_metadata_t *const *", ffi.from_buffer(handles)), count, sent)
            if status != lib.APUS_OK:
                error = _error()
                raise ApusError(error.status, f"{error} (sent {sent[0]} of {count})")
            return count
        finally:
            for described in made:
                described.free()
            del keep

    def _send_flat(self, output_id, buffer, start, length, code):
        """Sends `length` bytes from byte `start` of `buffer` as a flat array of element type `code`
        (the dora module's path for Arrow arrays, which needs no numpy array)."""
        pointer = ffi.from_buffer(buffer)
        if start < 0 or length < 0 or start + length > len(pointer):
            raise ValueError(f"bytes {start}..{start + length} are not within the buffer's {len(pointer)}")
        layout = self._layout(code, None)
        described = _Metadata(code, None, None) if layout is None else None
        try:
            _check(lib.apus_node_send(self._live(), self._output(output_id), pointer + start, length,
                                      layout if described is None else described.handle))
        finally:
            if described is not None:
                described.free()

    def allocate(self, output_id, shape, dtype=np.uint8, metadata=None):
        """Reserves a sample in shared memory as a writable numpy array; it is sent on leaving the
        `with` block (no copy), or given back if the block raises. Do not keep the array after."""
        dtype = np.dtype(dtype)
        code = _TYPE_OF.get(dtype)
        if code is None:
            raise TypeError(f"allocate: numpy dtype {dtype} is not one of " + ", ".join(str(d) for d in _DTYPES))
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"allocate: shape {shape} has a negative dimension")
        return _Allocation(self, output_id, shape, dtype, code, metadata)

    def reserve(self, output_id, length):
        """Reserves `length` bytes of a sample of `output_id` in shared memory: write into its
        `buffer`, then `send()` it (no copy) or `discard()` it, once every view of the buffer (a
        numpy array over it, say) is gone."""
        sample = ffi.new("apus_sample_t **")
        _check(lib.apus_node_allocate(self._live(), self._output(output_id), int(length), sample))
        return Reservation(self, sample[0], int(length))

    def close_output(self, output_id):
        """Tells the consumers of `output_id` that nothing more will come."""
        _check(lib.apus_node_close_output(self._live(), self._output(output_id)))

    def log(self, level, message):
        """Writes one line ("INFO  message") to the node's log; level is error, warn, info or debug."""
        code = _LOG_LEVELS.get(str(level).lower())
        if code is None:
            raise ValueError(f"log level {level!r} is not one of error, warn, info, debug")
        _check(lib.apus_node_log(self._live(), code, _c_text(str(message), "the message")))

    # Lifetime

    def close(self):
        """Releases the node's handle; events already received stay usable. The outputs stay open
        until the process exits (or `close_output`), so a node that fails afterwards is still
        reported as failed."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._free_layouts()
            if self._owned:
                lib.apus_node_free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self):
        return f"<Node {self.id!r} inputs={self.inputs} outputs={self.outputs}>"
