"""Steps the model pages' browser tests share (Playwright pages)."""


def accept_dialogs(page):
    page.on("dialog", lambda dialog: dialog.accept())


def mark_as_not_reloaded(page):
    """Leave a mark in the page's JavaScript state: a reload (or HX-Refresh) wipes it."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page):
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded instead of updated in place"
