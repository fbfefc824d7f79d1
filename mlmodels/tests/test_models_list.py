"""The models list's columns (stage, aliases, tags, versions, the four metrics, the artifact and its
scan, owner, updated), read in the one query of the page; the column choice's markup, tied to the
positions static/css/list.css hides; the row a live update swaps in, the same as the list's."""

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from mlmodels import services
from mlmodels.models import MLModel, ModelVersion, ScanStatus
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) the browser test
    expect = None

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
COLUMNS = [
    "Name",
    "Stage",
    "Aliases",
    "Tags",
    "Versions",
    "Accuracy",
    "Precision",
    "Recall",
    "F1",
    "Artifact",
    "Owner",
    "Updated",
]


class Table(HTMLParser):
    """The models table: its header cells' texts, and each row's cells as {label, text, title, html}."""

    def __init__(self, html: str):
        super().__init__()
        self.header: list[str] = []
        self.rows: dict[str, list[dict]] = {}
        self.menu: list[str] = []
        self.menu_attrs: dict[str, str] | None = None
        self._in_menu = False
        self._cell: dict | None = None
        self._row: list | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "details" and "data-columns-menu" in attributes:
            self.menu_attrs, self._in_menu = attributes, True
        if tag == "input" and attributes.get("type") == "checkbox" and self._in_menu:
            self.menu.append(attributes["value"])
        if tag == "tr" and attributes.get("id", "").startswith("model-row-"):
            self._row = self.rows.setdefault(attributes["id"], [])
        if tag in ("th", "td"):
            self._cell = {"tag": tag, "label": attributes.get("data-label"), "title": attributes.get("title")}
            self._cell["class"] = attributes.get("class", "").split()
            self._cell.update(text="", html="")
        elif self._cell is not None:
            self._cell["html"] += self.get_starttag_text()

    def handle_endtag(self, tag):
        if tag == "details":
            self._in_menu = False
        if tag in ("th", "td") and self._cell is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            if self._cell["tag"] == "th":
                self.header.append(self._cell["text"])
            elif self._row is not None:
                self._row.append(self._cell)
            self._cell = None
        elif self._cell is not None:
            self._cell["html"] += f"</{tag}>"
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
            self._cell["html"] += data


def table_of(response) -> Table:
    assert response.status_code == 200
    return Table(response.content.decode())


def cells(table: Table, model) -> dict[str, dict]:
    return {cell["label"]: cell for cell in table.rows[f"model-row-{model.pk}"]}


def attach(model, name: str = "w.bin"):
    data = io.BytesIO(b"weights")
    data.name = name
    return services.model_attach_file(model=model, actor=model.owner, file=data)


def test_the_header_and_every_row_have_the_columns_in_one_order(owner_client, user):
    MLModelFactory(owner=user, name="churn")
    MLModelFactory(owner=user, name="fraud")

    table = table_of(owner_client.get("/models/"))

    assert [re.sub(r" [▲▼]$", "", text) for text in table.header] == COLUMNS
    assert len(table.rows) == 2
    for row in table.rows.values():
        assert [cell["label"] for cell in row] == COLUMNS, "each cell carries its column's label (cards on phones)"


def test_the_stylesheet_hides_each_chosen_column_by_its_position_in_the_header(owner_client, user):
    """columns.js sets cols-hide-<value> for each box unticked; list.css must hide that box's column."""
    MLModelFactory(owner=user)
    table = table_of(owner_client.get("/models/"))
    css = (Path(settings.BASE_DIR) / "static" / "css" / "list.css").read_text()
    positions = dict(re.findall(r"\.cols-hide-([a-z0-9-]+) table\.models tr > :nth-child\((\d+)\)", css))

    assert set(positions) == set(table.menu), "one rule for each column of the menu"
    labels = {"artifact": "Artifact", "f1": "F1"}
    for value in table.menu:
        header = re.sub(r" [▲▼]$", "", table.header[int(positions[value]) - 1])
        assert header == labels.get(value, value.capitalize()), value
    assert "Name" not in table.menu and len(table.menu) == len(COLUMNS) - 1


def test_the_columns_menu_is_hidden_until_its_script_shows_it(owner_client, user):
    MLModelFactory(owner=user)

    content = owner_client.get("/models/").content.decode()
    table = Table(content)

    # Without JavaScript nothing hides a column: the menu stays hidden, every box is ticked.
    assert table.menu_attrs is not None and "hidden" in table.menu_attrs
    assert content.count('type="checkbox"') == len(table.menu) and content.count(" checked>") >= len(table.menu)
    head = content[: content.index("</head>")]
    assert "/static/css/list.css" in head
    assert re.search(r'<script src="/static/js/columns\.js"></script>', head), "not deferred: no flash of columns"
    # The fragment htmx swaps in has no menu (the menu stays where it is).
    assert "data-columns-menu" not in owner_client.get("/models/", **HTMX).content.decode()


def test_a_row_shows_aliases_tags_versions_metrics_and_owner(owner_client, user):
    model = MLModelFactory(
        owner=user,
        name="churn",
        accuracy=0.912345678,
        precision=0.8,
        recall=None,
        f1_score=0.75,
        tags={"team": "payments", "tier": "gold", "region": "eu", "pii": "no"},
    )
    for accuracy in (0.5, 0.6, 0.7):
        services.version_record(model=model, actor=user, data={"accuracy": accuracy})
    services.alias_set(model=model, actor=user, alias="prod", version_number=4)
    services.alias_set(model=model, actor=user, alias="champion", version_number=3)
    services.version_delete(model=model, actor=user, version_number=1)
    services.version_delete(model=model, actor=user, version_number=2)
    MLModel.objects.filter(pk=model.pk).update(accuracy=0.912345678)

    row = cells(table_of(owner_client.get("/models/")), model)

    assert row["Stage"]["text"] == "Development"
    assert "empty" not in row["Aliases"]["class"] and "empty" not in row["Tags"]["class"]
    # Aliases by name, each a chip filtering the list by it.
    assert row["Aliases"]["text"] == "@champion @prod"
    assert 'href="?alias=champion"' in row["Aliases"]["html"]
    # The first two tags by key, then how many more (to the model page, naming them in its title).
    tags = row["Tags"]
    assert tags["html"].count('class="chip"') == 2 and "+2" in tags["text"]
    assert tags["text"].startswith("pii: no region: eu")
    assert re.search(
        r'class="chip more" href="/models/\d+/#model-tags" title="team: payments, tier: gold"', tags["html"]
    )
    # 2 versions left of 4 (the current one is v4).
    assert row["Versions"]["text"] == "2" and "v4" in row["Versions"]["title"]
    # Four places, exact in the title; none shown as a dash.
    assert (row["Accuracy"]["text"], row["Accuracy"]["title"]) == ("0.9123", "0.912345678")
    assert (row["Precision"]["text"], row["Recall"]["text"], row["F1"]["text"]) == ("0.8000", "—", "0.7500")
    assert row["Recall"]["title"] is None
    assert row["Owner"]["text"] == user.username
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["Updated"]["text"])


def test_a_model_without_aliases_tags_or_artifact_says_so(owner_client, user):
    model = MLModelFactory(owner=user, name="bare")

    row = cells(table_of(owner_client.get("/models/")), model)

    # A dash to see, "none" to hear.
    assert row["Aliases"]["text"] == "—none" and row["Tags"]["text"] == "—none"
    assert "empty" in row["Aliases"]["class"] and "empty" in row["Tags"]["class"], "left out of a card"
    assert row["Versions"]["text"] == "1"
    assert row["Artifact"]["text"] == "None" and "badge" not in row["Artifact"]["html"]


def test_the_artifact_column_shows_file_or_folder_and_the_current_versions_scan(owner_client, user):
    filed = MLModelFactory(owner=user, name="filed")
    attach(filed, "weights.onnx")
    attach(filed, "weights-2.onnx")  # versions 2 and 3 have files; 3 is current
    ModelVersion.objects.filter(model=filed, version_number=2).update(scan_status=ScanStatus.CLEAN)
    ModelVersion.objects.filter(model=filed, version_number=3).update(scan_status=ScanStatus.UNSAFE)
    waiting = MLModelFactory(owner=user, name="waiting")
    attach(waiting)
    folder = MLModelFactory(owner=user, name="folder")
    MLModel.objects.filter(pk=folder.pk).update(file_count=3)
    ModelVersion.objects.filter(model=folder).update(scan_status=ScanStatus.UNKNOWN)

    table = table_of(owner_client.get("/models/"))

    artifact = cells(table, filed)["Artifact"]
    assert artifact["text"] == "File Unsafe", "the current version's scan, not an older one's"
    assert 'class="badge scan-unsafe"' in artifact["html"] and "weights-2.onnx" in artifact["html"]
    assert cells(table, waiting)["Artifact"]["text"] == "File Scan pending"
    assert cells(table, folder)["Artifact"]["text"] == "Folder Unknown"


@pytest.mark.parametrize("ordering", ["precision", "-precision", "recall", "-recall"])
def test_precision_and_recall_sort_the_list(owner_client, user, ordering):
    MLModelFactory(owner=user, name="low", precision=0.1, recall=0.9)
    MLModelFactory(owner=user, name="high", precision=0.9, recall=0.1)

    response = owner_client.get(f"/models/?ordering={ordering}", **HTMX)

    names = [model.name for model in response.context["page"].object_list]
    metric = ordering.lstrip("-")
    high_first = (metric == "precision") == ordering.startswith("-")
    assert names == (["high", "low"] if high_first else ["low", "high"])
    state = "descending" if ordering.startswith("-") else "ascending"
    assert re.search(rf'aria-sort="{state}"><a href="/models/\?ordering=-?{metric}"', response.content.decode())


def test_the_page_of_rows_is_one_query_whatever_the_rows_carry(owner_client, user, django_assert_max_num_queries):
    for n in range(25):
        model = MLModelFactory(owner=user, name=f"m-{n}", tags={"a": "1", "b": "2", "c": "3"})
        services.version_record(model=model, actor=user, data={"accuracy": 0.5})
        services.alias_set(model=model, actor=user, alias="champion", version_number=2)
        if n % 2:
            attach(model)

    # user; count; the page of models (+owners, versions counts and current scans)
    with django_assert_max_num_queries(3):
        response = owner_client.get("/models/", **HTMX)

    assert len(response.context["page"].object_list) == 20
    rows = table_of(response).rows
    assert len(rows) == 20
    assert all(dict((c["label"], c["text"]) for c in row)["Versions"] in ("2", "3") for row in rows.values())


def test_the_live_row_is_the_lists_row(owner_client, user, django_assert_max_num_queries):
    model = MLModelFactory(owner=user, name="churn", tags={"team": "x"})
    attach(model)
    services.alias_set(model=model, actor=user, alias="champion", version_number=2)
    listed = table_of(owner_client.get("/models/")).rows[f"model-row-{model.pk}"]

    # user; the model (+owner, experiment); its row as the list reads it
    with django_assert_max_num_queries(3):
        response = owner_client.get(reverse("model-part", args=[model.pk, "row"]), **HTMX)

    assert Table(response.content.decode()).rows[f"model-row-{model.pk}"] == listed
    events = re.search(r'data-live-events="([^"]+)"', response.content.decode()).group(1).split()
    assert {"alias.set", "alias.deleted", "version.deleted", "artifact.scanned"} <= set(events)


# --- in a browser -----------------------------------------------------------------------------------

OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_keyboard_hides_a_column_the_choice_is_remembered_and_phones_get_cards(
    page, browser_login, user, console_errors, save_screenshot
):
    model = MLModelFactory(
        owner=user, name="churn-predictor-eu-west", tags={"team": "retention", "region": "eu-west-1", "tier": "gold"}
    )
    attach(model, "churn-predictor-eu-west-2026-05.joblib")
    services.alias_set(model=model, actor=user, alias="champion", version_number=2)
    services.alias_set(model=model, actor=user, alias="challenger", version_number=1)
    for n in range(3):
        MLModelFactory(owner=user, name=f"fraud-model-{n:02d}")
    page.set_viewport_size({"width": 1280, "height": 900})
    browser_login(page, user)
    page.goto("/models/")
    wrap = page.locator(".results > .table-wrap")
    width, box_width = wrap.evaluate("element => [element.scrollWidth, element.clientWidth]")
    assert width <= box_width, f"all twelve columns fit 1280px: the table is {width}px in {box_width}px"
    header = page.get_by_role("columnheader", name="Precision")
    cell = page.locator(f"#model-row-{model.pk} td[data-label=Precision]")
    expect(header).to_be_visible()

    # The menu: its button opens it with Enter, Space unticks a box, Escape closes it and gives the focus back.
    menu = page.locator("[data-columns-menu]")
    summary = menu.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    precision = page.get_by_role("checkbox", name="Precision")
    expect(precision).to_be_visible()
    precision.focus()
    page.keyboard.press("Space")
    expect(precision).not_to_be_checked()
    expect(header).to_be_hidden()
    expect(cell).to_be_hidden()
    page.keyboard.press("Escape")
    expect(summary).to_be_focused()
    assert not menu.evaluate("element => element.open")

    # Rows htmx swaps in (a search) follow the choice; a reload remembers it.
    page.get_by_label("Search").fill("churn")
    expect(page).to_have_url(re.compile(r"search=churn"))
    expect(page.locator("table.models tbody tr")).to_have_count(1)
    expect(cell).to_be_hidden()
    expect(page.locator(f"#model-row-{model.pk} td[data-label=Recall]")).to_be_visible()
    page.reload()
    expect(header).to_be_hidden()
    expect(menu.locator("input[value=precision]")).not_to_be_checked()  # in the closed menu

    # A phone: each row a card, its cells labelled, the sort links above, nothing scrolls sideways.
    page.set_viewport_size({"width": 375, "height": 812})
    row = page.locator(f"#model-row-{model.pk}")
    assert row.evaluate("element => getComputedStyle(element).display") == "grid"
    accuracy = row.locator("td[data-label=Accuracy]")
    assert accuracy.evaluate("element => getComputedStyle(element, '::before').content") == '"Accuracy"'
    expect(page.get_by_role("link", name="Accuracy")).to_be_visible()
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert page.evaluate(OVERFLOW) <= 0, "the page scrolls sideways"
    expect(cell).to_be_hidden()
    save_screenshot(page, "models-list-cards-375px")

    # "Default columns" shows every column again.
    summary.click()
    page.get_by_role("button", name="Default columns").click()
    expect(cell).to_be_visible()
    assert page.evaluate("localStorage.length") == 0
    console_errors.assert_none()
