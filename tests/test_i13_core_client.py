"""The Python client's annotation methods against a real server: a set, the queue, versioned edits, review."""

from __future__ import annotations

import pytest
from test_i13_core_api import CROP, SCENE, Team, pixel_polygon
from test_i13_core_api import team as team  # the module's server

from eoengine.client import Client
from eoengine.errors import Conflict, Denied, Invalid, NotFound
from eoengine.platform.annotation.schemas import Stale


def _client(team: Team, who: str) -> Client:
    return Client(team.live.url, team.tokens[who])


def test_the_client_annotates_and_reviews(team: Team) -> None:
    with (_client(team, "rita") as rita, _client(team, "ann") as ann, _client(team, "ann") as tab,
          _client(team, "bob") as bob):
        made = rita.create_annotation_set("nc", "client", [SCENE], block_size=256)
        assert made.counts == {"open": 4} and rita.annotation_sets("nc")[0].name == "client"
        cells = rita.annotation_tasks("nc", made.id)["features"]
        assert len(cells) == 4 and {c["properties"]["state"] for c in cells} == {"open"}
        task = ann.next_task("nc", made.id)
        assert task.assignee == "ann" and (task.row, task.col) == (0, 0)
        square = pixel_polygon(made.grid, (10, 20), (10, 20))
        drawn = ann.add_feature("nc", task.id, square, 5)
        assert drawn["properties"]["version"] == 1 and drawn["properties"]["native_crs"] == "EPSG:32119"
        with pytest.raises(Invalid, match="no class"):
            ann.add_feature("nc", task.id, square, 42)
        with pytest.raises(Denied, match="not assigned"):
            bob.add_feature("nc", task.id, square, 5)
        mine = drawn | {"properties": {"label": 6, "version": 1}}
        theirs = drawn | {"properties": {"label": 7, "version": 1}}
        saved = ann.update_feature("nc", mine)
        assert saved["properties"]["version"] == 2
        with pytest.raises(Stale) as stale:
            tab.update_feature("nc", theirs)  # the annotator's other browser tab, still at version 1
        assert stale.value.current == saved and stale.value.fix
        with pytest.raises(Stale):
            ann.delete_feature("nc", drawn["id"], 1)
        assert ann.task_features("nc", task.id)["features"] == [saved]
        assert ann.submit_task("nc", task.id).state == "submitted"
        with pytest.raises(Invalid, match="reason"):
            rita.review_task("nc", task.id, "reject")
        back = rita.review_task("nc", task.id, "reject", pins=[{"lon": -78.75, "lat": 35.79, "text": "not forest"}])
        assert back.state == "rejected" and back.comments[0].text == "not forest"
        assert ann.comment_task("nc", task.id, "on it").author == "ann"
        assert ann.delete_feature("nc", drawn["id"], 2).deleted
        ann.submit_task("nc", task.id)
        assert rita.review_task("nc", task.id, "accept", comment="fine").state == "accepted"
        with pytest.raises(Conflict, match="accepted") as frozen:
            ann.update_feature("nc", saved | {"properties": {"label": 5, "version": 3}})
        assert not isinstance(frozen.value, Stale)  # a task state's refusal, no feature to merge
        actions = [e.action for e in ann.task_history("nc", task.id).events]
        assert actions == ["task.assign", "feature.create", "feature.update", "task.submit", "task.reject",
                           "task.comment", "feature.delete", "task.submit", "task.accept"]
        assert rita.assign_task("nc", cells[1]["id"], "bob").assignee == "bob"
        assert rita.annotation_task("nc", cells[1]["id"]).assignee == "bob"
        with pytest.raises(NotFound):
            rita.annotation_task("nc", 999_999)
        with pytest.raises(Invalid, match="two items"):
            rita.create_annotation_set("nc", "change-1", [CROP], kind="change")
