"""A small CUDA load for tests/gpu, with nothing but the CUDA driver (libcuda) through ctypes: no
torch, no cupy. It holds ``--mib`` MiB of device memory and, with ``--spin``, keeps a one-thread
kernel (hand-written PTX, compiled by the driver) running until ``--seconds`` have passed.

It uses the first device it sees (the local cluster sets ``CUDA_VISIBLE_DEVICES`` to the pod's
devices). Prints one line per step; exits 3 when no CUDA driver is found, 4 on a CUDA error.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time

# One thread, a loop of dependent multiply-adds (nothing the compiler can fold), the result stored.
PTX = b"""
.version 6.0
.target sm_50
.address_size 64

.visible .entry spin(.param .u64 out, .param .u64 n)
{
    .reg .pred %p<2>;
    .reg .b64 %rd<8>;
    ld.param.u64 %rd1, [out];
    ld.param.u64 %rd2, [n];
    cvta.to.global.u64 %rd3, %rd1;
    mov.u64 %rd4, 0;
    mov.u64 %rd5, 1;
LOOP:
    mul.lo.u64 %rd5, %rd5, 6364136223846793005;
    add.u64 %rd5, %rd5, 1442695040888963407;
    add.u64 %rd4, %rd4, 1;
    setp.lt.u64 %p1, %rd4, %rd2;
    @%p1 bra LOOP;
    st.global.u64 [%rd3], %rd5;
    ret;
}
\x00"""


def say(text: str) -> None:
    print(f"cuda_load: {text}", flush=True)


class Cuda:
    """The few driver calls used here; each failure raises with the driver's words."""

    def __init__(self) -> None:
        try:
            self.lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            say(f"no CUDA driver: {exc}")
            sys.exit(3)

    def __call__(self, name: str, *args) -> None:
        code = getattr(self.lib, name)(*args)
        if code != 0:
            text = ctypes.c_char_p()
            self.lib.cuGetErrorString(code, ctypes.byref(text))
            say(f"{name} failed: {code} {text.value.decode() if text.value else ''}")
            sys.exit(4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="device memory to hold, in MiB (1 to 1048576)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to run (at most 600)")
    parser.add_argument("--spin", action="store_true", help="keep a kernel running the whole time")
    args = parser.parse_args(argv)
    mib, seconds = max(1, min(args.mib, 1 << 20)), max(0.0, min(args.seconds, 600.0))
    cuda = Cuda()
    cuda("cuInit", 0)
    device, context = ctypes.c_int(), ctypes.c_void_p()
    cuda("cuDeviceGet", ctypes.byref(device), 0)
    cuda("cuCtxCreate_v2", ctypes.byref(context), 0, device)
    pointer, size = ctypes.c_uint64(), ctypes.c_size_t(mib << 20)
    cuda("cuMemAlloc_v2", ctypes.byref(pointer), size)
    cuda("cuMemsetD8_v2", pointer, ctypes.c_ubyte(1), size)  # touched: the memory is really used
    cuda("cuCtxSynchronize")
    say(f"holding {mib} MiB")
    deadline = time.monotonic() + seconds
    if args.spin:
        module, function = ctypes.c_void_p(), ctypes.c_void_p()
        cuda("cuModuleLoadData", ctypes.byref(module), ctypes.c_char_p(PTX))
        cuda("cuModuleGetFunction", ctypes.byref(function), module, b"spin")
        out, count = ctypes.c_uint64(pointer.value), ctypes.c_uint64(1 << 20)
        params = (ctypes.c_void_p * 2)(ctypes.addressof(out), ctypes.addressof(count))
        launches = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            cuda("cuLaunchKernel", function, 1, 1, 1, 1, 1, 1, 0, None, params, None)
            cuda("cuCtxSynchronize")
            took = time.monotonic() - started
            launches += 1
            if took < 0.1 and count.value < (1 << 40):  # aim at about 0.2 s per launch
                count.value = min(count.value * 2, 1 << 40)
            if launches == 1 or launches % 50 == 0:
                say(f"spinning: launch {launches} took {took:.3f} s ({count.value} iterations)")
        say(f"{launches} kernel launches")
    else:
        time.sleep(max(0.0, deadline - time.monotonic()))
    cuda("cuMemFree_v2", pointer)
    cuda("cuCtxDestroy_v2", context)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
