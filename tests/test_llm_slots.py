"""The model's slots: first come first served, the place in the queue told to the asker, a full queue
refused with a message, slot settings that cannot work refused at load."""

from __future__ import annotations

import queue
import threading

import pytest
from pydantic import ValidationError

from core.errors import ModelBusy
from core.schema import Requester
from llm.slots import LLMSlots
from settings import load_settings


def test_questions_wait_in_order_and_move_up_when_a_slot_frees():
    slots = LLMSlots(capacity=2, queue_limit=3)
    running = [slots.join(), slots.join()]
    assert [t.position for t in running] == [0, 0]
    waiting = [slots.join(), slots.join(), slots.join()]
    assert [t.position for t in waiting] == [1, 2, 3]
    assert not waiting[0].wait(0)
    running[0].leave()
    assert waiting[0].wait(0) and [t.position for t in waiting] == [0, 1, 2]
    waiting[1].leave()  # gave up waiting
    assert waiting[2].position == 1
    running[1].leave()
    running[1].leave()  # twice is harmless
    assert waiting[2].wait(0) and slots.waiting == 0


def test_a_full_queue_is_refused_with_a_message():
    slots = LLMSlots(capacity=1, queue_limit=1)
    slots.join()
    slots.join()
    with pytest.raises(ModelBusy) as busy:
        slots.join()
    assert busy.value.key == "llm_busy" and busy.value.params == {"waiting": 1}
    assert LLMSlots(capacity=1, queue_limit=0).join().position == 0


@pytest.mark.parametrize("bad", [{"servers": 0}, {"server_slots": 0}, {"queue_limit": -1}, {"slots": 4}])
def test_slot_settings_that_cannot_work_are_refused(bad, data_dir):
    with pytest.raises(ValidationError):
        load_settings(data_dir=data_dir, llm=bad)


@pytest.mark.parametrize(("capacity", "queue_limit"), [(0, 4), (1, -1)])
def test_slots_that_cannot_work_are_refused(capacity, queue_limit):
    with pytest.raises(ValueError):
        LLMSlots(capacity, queue_limit)


def test_the_service_tells_a_waiting_question_its_place(samples_container):
    """Every slot busy: the stream says where the question stands, then answers once the slot frees."""
    from qa.service import AnswerEvent, QueuedEvent, TokenEvent

    answers = samples_container.answers
    held = answers.slots.join()
    events: queue.Queue = queue.Queue()

    def ask() -> None:
        for event in answers.stream("口座開設時の本人確認書類は？", Requester("staff", ())):
            events.put(event)

    asker = threading.Thread(target=ask)
    asker.start()
    seen = []
    while not any(isinstance(e, QueuedEvent) for e in seen):
        seen.append(events.get(timeout=300))
    assert not any(isinstance(e, TokenEvent) for e in seen)
    assert [e.position for e in seen if isinstance(e, QueuedEvent)] == [1]
    held.leave()
    asker.join(600)
    while not events.empty():
        seen.append(events.get())
    final = [e.answer for e in seen if isinstance(e, AnswerEvent)]
    assert final and final[0].timings.queue_ms > 0 and final[0].answer.strip()
