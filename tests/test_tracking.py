import numpy as np

from siam_jax.inference.tracking import Tracker


def test_ids_follow_people_when_detection_order_changes():
    rng = np.random.default_rng(0)
    people = np.array([[-1.0, 0.0, 5.0], [1.0, 0.0, 5.0], [0.0, 0.0, 8.0]])
    tracker = Tracker()
    first = tracker.update(people)
    assert sorted(first.tolist()) == [0, 1, 2]
    for _ in range(10):
        people = people + rng.normal(scale=0.05, size=people.shape)
        order = rng.permutation(3)
        ids = tracker.update(people[order])
        np.testing.assert_array_equal(ids, first[order])


def test_new_person_gets_new_id_and_far_jump_is_not_matched():
    tracker = Tracker(max_distance=0.5)
    a = tracker.update(np.array([[0.0, 0.0, 5.0]]))
    b = tracker.update(np.array([[0.0, 0.0, 5.1], [3.0, 0.0, 5.0]]))
    assert b[0] == a[0] and b[1] not in a
    c = tracker.update(np.array([[0.0, 0.0, 9.0]]))  # 3.9 m jump: a different person
    assert c[0] not in b


def test_track_expires_after_max_age():
    tracker = Tracker(max_age=2)
    a = tracker.update(np.array([[0.0, 0.0, 5.0]]))
    for _ in range(3):
        tracker.update(np.zeros((0, 3)))
    b = tracker.update(np.array([[0.0, 0.0, 5.0]]))
    assert b[0] != a[0]
