"""Migration records in SQLite, as lslparmigr in another terminal reads them."""

import sqlite3

import pytest

from lpmlab.hmc.store import IN_PROGRESS_STATES, MigrationRecord, MigrationStore


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "state" / "migrations.db"


@pytest.fixture
def store(db_path):
    return MigrationStore(db_path)


def rec(partition="lpar1", state="Migration Starting", started=1000.0, **kw):
    return MigrationRecord(partition, "sys1", "sys2", state=state, started=started, **kw)


def test_store_creates_its_directory(db_path):
    MigrationStore(db_path)
    assert db_path.is_file()


def test_record_round_trips_with_phases_and_stats(store):
    r = rec(command="migrlpar -o m -m sys1 -t sys2 -p lpar1", source_msp="vios1",
            dest_msp="vios2", port=49152)
    r.phase("validate", seconds=0.25)
    r.phase("transfer", iterations=[{"n": 1, "remaining": 1 << 30}])
    r.stats.update({"downtime": 81, "data_processed": 536870912, "bandwidth": 412.5,
                    "note": "unicode ✓", "nested": {"a": [1, 2, None]}})
    store.save(r)
    back = store.get(r.id)
    assert back == r
    assert back is not r
    assert back.phases[1]["iterations"][0]["remaining"] == 1 << 30
    assert [p["phase"] for p in back.phases] == ["validate", "transfer"]


def test_get_of_an_unknown_id_is_none(store):
    assert store.get("nope") is None


def test_saving_again_updates_in_place(store):
    r = rec()
    store.save(r)
    r.state = "Migration Complete"
    r.ended = 1010.0
    r.result = "success"
    r.phase("complete")
    store.save(r)
    assert len(store.latest()) == 1
    back = store.get(r.id)
    assert (back.state, back.ended, back.result) == ("Migration Complete", 1010.0, "success")
    assert back.phases[-1]["phase"] == "complete"


def test_active_returns_only_in_progress_states(store):
    states = [*IN_PROGRESS_STATES, "Migration Complete", "Migration Failed", "Not Migrating",
              "Migration Stopped"]
    ids = {}
    for i, state in enumerate(states):
        r = rec(partition=f"lpar{i}", state=state)
        store.save(r)
        ids[r.id] = state
    active = store.active()
    assert {r.state for r in active} == set(IN_PROGRESS_STATES)
    assert {r.id for r in active} == {i for i, s in ids.items() if s in IN_PROGRESS_STATES}
    assert len(active) == 3


def test_latest_is_newest_first_and_filters_by_partition(store):
    for started, part in [(1000.0, "lpar1"), (3000.0, "lpar2"), (2000.0, "lpar1"),
                          (4000.0, "lpar1")]:
        store.save(rec(partition=part, started=started, state="Migration Complete"))
    assert [r.started for r in store.latest()] == [4000.0, 3000.0, 2000.0, 1000.0]
    assert [r.started for r in store.latest("lpar1")] == [4000.0, 2000.0, 1000.0]
    assert [r.started for r in store.latest("lpar1", limit=2)] == [4000.0, 2000.0]
    assert store.latest("lpar9") == []


def test_a_second_store_on_the_same_file_sees_writes(db_path):
    writer = MigrationStore(db_path)
    reader = MigrationStore(db_path)  # opened before anything was written
    r = rec()
    writer.save(r)
    assert reader.get(r.id) == r
    assert [a.id for a in reader.active()] == [r.id]
    r.state = "Migration Complete"
    writer.save(r)
    assert reader.active() == []
    assert reader.get(r.id).state == "Migration Complete"


def test_file_is_plain_sqlite_readable_by_other_tools(store, db_path):
    r = rec()
    r.stats["downtime"] = 80
    store.save(r)
    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT partition, state, stats FROM migrations WHERE id=?",
                         (r.id,)).fetchone()
    assert row == ("lpar1", "Migration Starting", '{"downtime": 80}')


def test_records_get_distinct_ids_and_a_requester():
    a, b = rec(), rec()
    assert a.id != b.id
    assert a.requested_by


def test_claim_gives_free_ports_and_counts_only_other_migrations(store):
    from lpmlab.hmc.store import LimitReached

    ports = range(49152, 49154)
    first = rec("lpar1")
    # a frame that allows one migration takes this one: it does not count against itself
    assert store.claim_port(first, ports, limits={"sys1": 1, "sys2": 1}) == 49152
    assert store.claim_port(first, ports, limits={"sys1": 1, "sys2": 1}) == 49152
    second = rec("lpar2")
    with pytest.raises(LimitReached) as exc:
        store.claim_port(second, ports, limits={"sys1": 16, "sys2": 1})
    assert exc.value.args == ("sys2", 1)
    assert store.get(second.id) is None, "a refused claim stores nothing"
    assert store.claim_port(second, ports, limits={"sys1": 16, "sys2": 16}) == 49153
    third = rec("lpar3")
    assert store.claim_port(third, ports, limits={"sys1": 16, "sys2": 16}) is None
