"""Several processes, one run: launch detection, the workdir lock, preemption across hosts.

* ``maybe_initialize_distributed`` calls ``jax.distributed.initialize`` when the environment
  names a multi-process launch (``detect_launch``): the explicit ``JAX_COORDINATOR_ADDRESS`` /
  ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``; SLURM (``srun``: ``SLURM_JOB_ID`` with
  ``SLURM_NTASKS`` > 1); Open MPI (``mpirun``: ``OMPI_MCA_orte_hnp_uri`` with
  ``OMPI_COMM_WORLD_SIZE`` > 1); a cloud TPU pod slice (``TPU_WORKER_HOSTNAMES`` or
  ``TPU_PROCESS_ADDRESSES`` naming several hosts, or ``MEGASCALE_COORDINATOR_ADDRESS``); or
  ``SIAM_JAX_DISTRIBUTED=1`` (any other launcher JAX's own cluster detection knows, e.g. a TPU VM
  whose variables live in the metadata server, Kubernetes). The last four call
  ``jax.distributed.initialize()`` without arguments: JAX's cluster plugins
  (``jax._src.clusters``) read the coordinator, process count and id from the same variables.
* ``WorkdirLock``: an exclusive ``flock`` on ``WORKDIR/train.lock`` (holding the pid and host of
  the holder), taken by process 0 of a run; a second, independent run into the same workdir
  fails at once naming the holder. The kernel drops the lock when its process dies (SIGKILL
  included), so a crashed run never leaves a stale lock behind. The processes of one
  ``jax.distributed`` job share the lock of their process 0.
* ``Preemption``: SIGTERM sets a local flag; ``stop_now`` tells every process the same answer at
  the same step (an all-reduced OR over processes, through
  ``multihost_utils.host_local_array_to_global_array``), so a signal to one host stops all of
  them at one step boundary with one checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P

FORCE_ENV = "SIAM_JAX_DISTRIBUTED"
LOCK_NAME = "train.lock"


def _count(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env.get(key, "1"))
    except ValueError:
        return 1


def _hosts(value: str | None) -> int:
    return len([h for h in (value or "").split(",") if h.strip()])


def detect_launch(env: Mapping[str, str]) -> str | None:
    """``"explicit"``, ``"slurm"``, ``"openmpi"``, ``"cloud_tpu"``, ``"forced"`` or None (one
    process) for an environment (``os.environ``)."""
    if "JAX_COORDINATOR_ADDRESS" in env and _count(env, "JAX_NUM_PROCESSES") > 1:
        return "explicit"
    if "SLURM_JOB_ID" in env and _count(env, "SLURM_NTASKS") > 1:
        return "slurm"
    if "OMPI_MCA_orte_hnp_uri" in env and _count(env, "OMPI_COMM_WORLD_SIZE") > 1:
        return "openmpi"
    tpu_hosts = max(
        _hosts(env.get("TPU_WORKER_HOSTNAMES")), _hosts(env.get("TPU_PROCESS_ADDRESSES"))
    )
    if tpu_hosts > 1 or "MEGASCALE_COORDINATOR_ADDRESS" in env:
        return "cloud_tpu"
    if env.get(FORCE_ENV, "") not in ("", "0"):
        return "forced"
    return None


def maybe_initialize_distributed(env: Mapping[str, str] | None = None) -> str | None:
    """``jax.distributed.initialize`` for a detected multi-process launch (module docstring);
    returns what was detected. Must run before anything touches a JAX device. CPU processes
    talk through gloo collectives (jax config ``jax_cpu_collectives_implementation``)."""
    env = os.environ if env is None else env
    launch = detect_launch(env)
    if launch is None or jax.distributed.is_initialized():
        return launch
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if launch == "explicit":
        jax.distributed.initialize(
            coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(env["JAX_NUM_PROCESSES"]),
            process_id=int(env["JAX_PROCESS_ID"]),
        )
    else:
        jax.distributed.initialize()  # JAX's cluster plugins read the launcher's variables
    logging.info("jax.distributed initialised (%s launch)", launch)
    return launch


class WorkdirLockedError(RuntimeError):
    """Another run holds this workdir."""


class WorkdirLock:
    """Exclusive lock of a workdir for one run (module docstring). ``acquire`` on every process:
    process 0 takes the file lock and the outcome is broadcast, so all raise together."""

    def __init__(self, workdir: str):
        self.path = os.path.join(os.path.abspath(workdir), LOCK_NAME)
        self._fd: int | None = None

    def _try_lock(self) -> str | None:
        """None when locked, else the holder's description."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "processes": jax.process_count()}
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        self._fd = fd
        return None

    def acquire(self) -> WorkdirLock:
        holder = self._try_lock() if jax.process_index() == 0 else None
        if jax.process_count() > 1:
            refused = multihost_utils.broadcast_one_to_all(np.int32(holder is not None))
            if int(refused) and holder is None:
                holder = "the run holding it (named in process 0's error)"
        if holder is not None:
            raise WorkdirLockedError(
                f"{self.path}: the workdir is in use by another training run ({holder}); "
                "independent runs need their own workdirs (the processes of one "
                "jax.distributed job share one)"
            )
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class Preemption:
    """SIGTERM sets a flag; the loop saves a checkpoint at the agreed step boundary and exits."""

    def __init__(self, mesh=None):
        self.requested = False
        self._previous = None
        self._installed = False
        self._mesh = mesh
        self._any = None
        self._pending = None
        if mesh is not None and jax.process_count() > 1:
            repl = jax.sharding.NamedSharding(mesh, P())
            self._any = jax.jit(jnp.any, out_shardings=repl)

    def __enter__(self) -> Preemption:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        except ValueError:  # not the main thread: no handler (tests driving the loop in threads)
            self._previous = None
        return self

    def rearm(self) -> None:
        """Installs the handler again. Libraries loaded lazily during training (TensorFlow's C++
        absl failure-signal handler, loaded with the first TFDS read) take SIGTERM over at the C
        level, where Python's ``signal.getsignal`` cannot see it; one syscall per step."""
        if self._installed:
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        logging.warning("SIGTERM: saving a checkpoint and exiting")
        self.requested = True

    def stop_now(self) -> bool:
        """True on every process when any process was signalled (one process: its own flag, at
        once). Called once per step, after the step is dispatched, by every process.

        Several processes: the OR of this step's flags is dispatched now and read at the next
        call, so the host never waits for the step it just dispatched (one step of lag, the same
        on every process: all stop after the same step)."""
        if self._any is None:
            return self.requested
        local = np.full((jax.local_device_count(),), self.requested)
        flags = multihost_utils.host_local_array_to_global_array(local, self._mesh, P("data"))
        previous, self._pending = self._pending, self._any(flags)
        return previous is not None and bool(jax.device_get(previous))

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
