"""Password hashes: one argon2 lane in an idle-class thread, so a login takes no core from
the citizens' turns; old hashes upgrade."""

from __future__ import annotations

import os
import threading

import pytest
from argon2 import PasswordHasher, extract_parameters

from handover.agents.passwords import PasswordPool


async def test_a_new_hash_has_one_lane_and_the_rfc_9106_memory_and_passes() -> None:
    pool = PasswordPool(1)
    try:
        parameters = extract_parameters(await pool.hash("richtig-geheim-42"))
    finally:
        pool.close()
    assert (parameters.parallelism, parameters.memory_cost, parameters.time_cost) == (1, 65536, 3)


async def test_a_four_lane_hash_still_verifies_and_comes_back_with_one_lane() -> None:
    old = PasswordHasher().hash("richtig-geheim-42")  # argon2-cffi's defaults: four lanes
    assert extract_parameters(old).parallelism == 4
    pool = PasswordPool(1)
    try:
        right, upgraded = await pool.verify(old, "richtig-geheim-42")
        wrong, none = await pool.verify(old, "falsch")
    finally:
        pool.close()
    assert right and upgraded is not None and extract_parameters(upgraded).parallelism == 1
    assert not wrong and none is None


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")
async def test_hashes_run_in_the_idle_scheduling_class_off_the_loop_thread() -> None:
    pool = PasswordPool(1)
    try:
        policy, tid = await pool._run(lambda: (os.sched_getscheduler(0), threading.get_native_id()))
    finally:
        pool.close()
    assert policy == os.SCHED_IDLE
    assert tid != threading.get_native_id()
    assert os.sched_getscheduler(0) != os.SCHED_IDLE
