"""Zero-copy DLPack interop between torch tensors and the native layer."""
import threading
import time

import pytest
import torch

from pyvideo._native import from_dlpack, native


def test_native_writes_into_the_callers_storage():
    t = torch.zeros(3, 5)
    assert native()._data_address(t) == t.data_ptr()
    native()._fill_f32(t, 2.5)
    assert torch.all(t == 2.5)


def test_views_share_storage_with_their_base():
    base = torch.zeros(4, 6)
    view = base[1:3]  # contiguous rows of a bigger tensor: same storage, offset pointer
    assert native()._data_address(view) == view.data_ptr() == base.data_ptr() + 6 * 4
    native()._fill_f32(view, 1.0)
    assert base[1:3].eq(1).all() and base[0].eq(0).all() and base[3].eq(0).all()


def test_native_buffers_come_back_without_copy():
    t = from_dlpack(native()._arange_capsule(7))
    assert t.dtype == torch.float32 and t.tolist() == [0, 1, 2, 3, 4, 5, 6]
    # the tensor owns the buffer now: writing to it and dropping it is safe
    t += 1
    assert t[-1].item() == 7
    del t


def test_unadopted_capsule_is_freed():
    for _ in range(1000):
        native()._arange_capsule(1024)  # dropped without torch adopting it: our destructor frees it


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(3, 4, dtype=torch.float64), "dtype float32"),
        (torch.zeros(3, 4, dtype=torch.int32), "dtype float32"),
        (torch.zeros(4, 3).t(), "C-contiguous"),
        (torch.zeros(4, 6)[:, ::2], "C-contiguous"),
        ([1.0, 2.0], "__dlpack__"),
    ],
)
def test_wrong_input_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        native()._fill_f32(bad, 0.0)


def test_native_call_releases_the_gil():
    """A Python thread keeps running while another thread is inside a long native call."""
    x = torch.randn(1, 64, 16, 64, 64).contiguous(memory_format=torch.channels_last_3d)
    w = torch.randn(64, 1, 3, 3, 3)
    from pyvideo.ops.depthwise_conv3d import depthwise_conv3d

    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        start = time.perf_counter()
        for _ in range(5):
            depthwise_conv3d(x, w, None, [1, 1, 1], [1, 1, 1])
        end = time.perf_counter()
    finally:
        stop.set()
        thread.join()
    during = [t for t in ticks if start < t < end]
    # With the GIL held for the whole native call, the ticker could only run between calls (a handful of ticks).
    assert len(during) >= 10, f"ticker ran {len(during)} times in {end - start:.3f}s of native work"


def test_dlpack_capsules_are_read_in_place_and_left_unconsumed():
    from torch.utils.dlpack import to_dlpack

    t = torch.zeros(2, 5)
    capsule = to_dlpack(t)
    assert native()._data_address(capsule) == t.data_ptr()
    native()._fill_f32(capsule, 4.0)
    assert torch.equal(t, torch.full((2, 5), 4.0))
    assert torch.from_dlpack(capsule).data_ptr() == t.data_ptr()  # still an unused capsule after the native call
    with pytest.raises(ValueError, match="not an unused DLPack tensor capsule"):
        native()._fill_f32(capsule, 1.0)  # torch.from_dlpack consumed it
