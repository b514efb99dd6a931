"""The main flows in a real browser: Chromium driven by Playwright against the app served on loopback."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect, sync_playwright

from app import cli, create_app
from tests.browser import CHROMIUM_ARGS, LiveServer, copy_seed_sample, find_chromium
from tests.conftest import ROOT, SEED, missing

ARTIFACTS = ROOT / "test-artifacts" / "browser"
USER, PASSWORD = "bea", "browser test password"
TIMEOUT_MS = 5_000  # everything is local; a missing element should fail fast, not after Playwright's 30 s
RESULT_TITLES = "ol.results li a.title"

TITLE = "Quokkafrost churn model kept scoring last year's customers"
POSTMORTEM = f"""# {TITLE}

## Summary

The Quokkafrost churn model flagged loyal customers as about to leave for three weeks.

## Root cause

Data drift: the input distribution shifted after the pricing change, so the features the model saw in
production no longer looked like its training data. Nobody monitored the feature distributions.
"""

# True once any chart canvas holds a pixel that is not fully transparent.
ANY_CANVAS_DRAWN = """() => [...document.querySelectorAll("canvas[data-chart]")].some((canvas) => {
  if (!canvas.width || !canvas.height) return false;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let alpha = 3; alpha < pixels.length; alpha += 4) if (pixels[alpha]) return true;
  return false;
})"""


@pytest.fixture(scope="module")
def browser():
    """Launch the installed Chromium; skip without one, or fail when CI or KB_REQUIRE_BROWSER asks for it."""
    executable = find_chromium()
    if executable is None:
        missing("Chromium is not installed (apt-get install chromium); the browser tests cannot run", "KB_REQUIRE_BROWSER")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live_url(tmp_path_factory):
    """Import a sample of seed_data, add a user, serve the app on loopback and return its base URL."""
    folder = tmp_path_factory.mktemp("browser")
    data_dir = str(folder / "data")
    copy_seed_sample(SEED, folder / "seed")
    runner = CliRunner(env={"KB_DATA_DIR": data_dir})
    for args in (["import", str(folder / "seed")], ["user", "add", USER, "--password", PASSWORD]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    app = create_app({"KB_DATA_DIR": data_dir, "KB_SECRET_KEY": "browser-tests"})
    server = LiveServer(app)
    yield server.start()
    server.stop()
    app.extensions["kb"].engine.dispose()


@pytest.fixture
def page(request, browser, live_url):
    """A page in a fresh browser context (no cookies from other tests); saved to test-artifacts/ on failure.

    Light colour scheme unless the test parametrizes the fixture with "dark".
    """
    context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 900},
                                  color_scheme=getattr(request, "param", "light"))
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
        (ARTIFACTS / f"{name}.html").write_text(page.content(), encoding="utf-8")
    context.close()


def search_for(page, query: str) -> None:
    page.goto("/search")
    page.locator("#q").fill(query)
    page.locator("#q").press("Enter")
    expect(page).to_have_url(re.compile(rf"/search\?q={query}"))


def sign_in(page) -> None:
    page.goto("/login")
    page.locator("#name").fill(USER)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))


def tag_item(page, label: str):
    return page.locator(f'ul.tag-list > li[data-label="{label}"]')


def slug_with_suggestions(page, at_least: int = 2) -> str:
    """Return the first slug, in name order, with at_least machine tags nobody has decided on yet."""
    listed = page.request.get("/api/postmortems?limit=200").json()["postmortems"]
    for slug in sorted(record["slug"] for record in listed):
        tags = page.request.get(f"/api/postmortems/{slug}").json()["tags"]
        if sum(tag["status"] == "suggested" for tag in tags) >= at_least:
            return slug
    raise AssertionError(f"no imported postmortem has {at_least} suggested tags")


def test_search_filter_by_facet_and_read_the_evidence(page):
    search_for(page, "drift")
    expect(page.locator(RESULT_TITLES).first).to_be_visible()

    facet_link = page.locator('aside.filters a[data-filter-field="facet"]').first
    facet = facet_link.get_attribute("data-filter-value")
    facet_link.click()
    expect(page).to_have_url(re.compile(rf"[?&]facet={facet}(&|$)"))
    results = page.locator("ol.results > li")
    expect(results.first).to_be_visible()
    expect(results.filter(has_not=page.locator(f'a.chip.facet[data-label="{facet}"]'))).to_have_count(0)

    results.first.locator("a.title").click()
    expect(page).to_have_url(re.compile(r"/postmortems/"))
    tag = tag_item(page, facet)
    expect(tag).to_have_attribute("data-status", re.compile(r"^(suggested|confirmed)$"))
    expect(tag.locator("ul.evidence li").first).to_be_visible()
    expect(page.locator("section.body mark.evidence").first).to_be_visible()


def test_chip_evidence_shows_on_hover_and_on_keyboard_focus(page):
    search_for(page, "drift")
    page.locator(RESULT_TITLES).first.click()
    wrap = page.locator(".chip-wrap").first
    chip, popover = wrap.locator("a.chip"), wrap.locator(".chip-evidence")
    expect(popover).to_have_attribute("role", "tooltip")
    expect(popover).to_be_hidden()

    chip.hover()
    expect(popover).to_be_visible()
    page.mouse.move(0, 0)
    expect(popover).to_be_hidden()

    # Reach the chip the way a keyboard user does: from the element before it.
    chip.focus()
    page.keyboard.press("Shift+Tab")
    expect(popover).to_be_hidden()
    page.keyboard.press("Tab")
    expect(chip).to_be_focused()
    expect(popover).to_be_visible()

    # Escape hides it without moving focus; it comes back when the chip is focused again.
    page.keyboard.press("Escape")
    expect(popover).to_be_hidden()
    expect(chip).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    expect(popover).to_be_visible()


def test_confirm_and_reject_tags_survive_a_reload(page):
    slug = slug_with_suggestions(page)
    sign_in(page)
    page.goto(f"/postmortems/{slug}")
    suggested = page.locator('ul.tag-list > li[data-status="suggested"]')
    expect(suggested.nth(1)).to_be_visible()
    confirmed, rejected = suggested.nth(0).get_attribute("data-label"), suggested.nth(1).get_attribute("data-label")

    tag_item(page, confirmed).get_by_role("button", name="Confirm").click()
    expect(tag_item(page, confirmed)).to_have_attribute("data-status", "confirmed")
    tag_item(page, rejected).get_by_role("button", name="Reject").click()
    expect(tag_item(page, rejected)).to_have_attribute("data-status", "rejected")

    page.reload()
    expect(tag_item(page, confirmed)).to_have_attribute("data-status", "confirmed")
    expect(tag_item(page, rejected)).to_have_attribute("data-status", "rejected")
    expect(tag_item(page, confirmed).locator('a.chip[data-source="human"]')).to_have_count(1)


def test_write_a_postmortem_in_the_form_and_find_it(page):
    sign_in(page)
    page.goto("/new")
    markdown = page.locator("#markdown")
    page.locator("button[data-template]").click()
    expect(markdown).to_have_value(re.compile(r"^---\ndate: \d{4}-\d\d-\d\d\n[\s\S]*^## Root cause", re.MULTILINE))
    # Into a text already begun, it inserts the sections at the cursor, without a second front matter.
    markdown.fill("---\nseverity: SEV3\n---\n# Begun\n")
    page.locator("button[data-template]").click()
    value = markdown.input_value()
    assert value.startswith("---\nseverity: SEV3\n---\n# Begun\n") and value.count("---\n") == 2, value
    assert "## Contributing factors" in value

    markdown.fill(POSTMORTEM)
    expect(page.locator("#preview h1")).to_have_text(TITLE)
    expect(page.locator('#suggested-tags .chip[data-label="data-drift"]')).to_be_visible()
    expect(page.locator("#preview mark.evidence").first).to_be_visible()
    # Keeping a suggestion writes it into the front matter, so it is saved as the author's own decision.
    page.locator('#suggested-tags button[data-keep="data-drift"]').click()
    expect(markdown).to_have_value(re.compile(r"^---\ncategories: \[data-drift\]\n---\n# Quokkafrost"))
    expect(page.locator('#suggested-tags .chip[data-label="data-drift"]')).to_have_attribute("data-source", "human")
    page.get_by_role("button", name="Save postmortem").click()
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(tag_item(page, "data-drift")).to_have_attribute("data-status", "confirmed")

    search_for(page, "Quokkafrost")
    expect(page.locator(RESULT_TITLES).first).to_have_text(TITLE)

    # The edit page has the same editor: its preview draws the stored text as soon as it opens.
    page.locator(RESULT_TITLES).first.click()
    page.get_by_role("link", name="Edit this postmortem").click()
    expect(page.locator("#preview h1")).to_have_text(TITLE)
    expect(page.locator('#suggested-tags .chip[data-label="data-drift"]')).to_be_visible()
    markdown.fill(POSTMORTEM + "\nThe retraining job had been paused since the spring reorg.\n")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Saved your changes.")
    expect(page.locator("section.body")).to_contain_text("paused since the spring reorg")


def test_trends_draw_charts_and_link_to_filtered_searches(page):
    page.goto("/trends")
    expect(page.locator("canvas[data-chart]").first).to_be_attached()
    page.wait_for_function(ANY_CANVAS_DRAWN)

    # A cell counting zero postmortems would land on an empty search.
    link = page.locator('a[href*="/search"][href*="facet="]').filter(has_not_text=re.compile(r"^\s*0\s*$")).first
    facet = parse_qs(urlsplit(link.get_attribute("href")).query)["facet"][0]
    link.click()
    expect(page).to_have_url(re.compile(r"/search\?.*facet="))
    active = page.locator(f'aside.filters a[data-filter-field="facet"][data-filter-value="{facet}"]')
    expect(active).to_have_class(re.compile(r"\bon\b"))
    expect(page.locator(RESULT_TITLES).first).to_be_visible()


def test_the_not_found_page_offers_a_search(page):
    response = page.goto("/no-such-page")
    assert response.status == 404
    box = page.locator("main form[role=search] input[name=q]")
    box.fill("drift")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=drift"))
    expect(page.locator(RESULT_TITLES).first).to_be_visible()


# WCAG contrast ratio of each matching element's text against the first opaque background behind it.
CONTRASTS = """(selectors) => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const backgroundOf = (el) => {
    for (; el; el = el.parentElement) {
      const colour = rgb(getComputedStyle(el).backgroundColor);
      if (colour.length === 3 || colour[3] > 0.9) return colour.slice(0, 3);
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
  };
  const out = {};
  for (const selector of selectors) {
    const el = document.querySelector(selector);
    if (!el) { out[selector] = null; continue; }
    const [a, b] = [luminance(rgb(getComputedStyle(el).color)), luminance(backgroundOf(el))];
    out[selector] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }
  return out;
}"""
# Form controls with no accessible name: no <label>, no aria-label, no aria-labelledby.
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.type !== "hidden" && el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                  && !el.getAttribute("aria-labelledby") && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize("page", ["light", "dark"], indirect=True)
def test_text_contrast_and_labels_in_both_colour_schemes(page, request):
    search_for(page, "drift")
    ratios = page.evaluate(CONTRASTS, ["ol.results a.title", ".snippet", ".meta", ".summary", "a.chip.facet",
                                        "a.chip.category", "aside.filters a", "mark", "button[type=submit]"])
    assert all(ratio is not None and ratio >= 4.5 for ratio in ratios.values()), ratios
    for path in ("/", "/search?q=drift", "/trends", "/login", "/no-such-page"):
        page.goto(path)
        assert page.evaluate(UNLABELLED) == [], path
    dark = request.node.callspec.params["page"] == "dark"
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == dark


FRONT_MATTER_CASES = [
    # (markdown before, key, label, markdown after); None when the page leaves the edit to the author.
    ("# T\n", "facets", "people", "---\nfacets: [people]\n---\n# T\n"),
    ("---\ndate: 2024-01-02\n---\n# T\n", "facets", "people", "---\ndate: 2024-01-02\nfacets: [people]\n---\n# T\n"),
    ("---\nfacets: [structure]  # sure\n---\n# T\n", "facets", "people",
     "---\nfacets: [structure, people] # sure\n---\n# T\n"),
    ("---\nfacets: []\n---\n# T\n", "facets", "people", "---\nfacets: [people]\n---\n# T\n"),
    ("---\nfacets:\n    - structure\ndate: 2024-01-02\n---\n# T\n", "facets", "people",
     "---\nfacets:\n    - structure\n    - people\ndate: 2024-01-02\n---\n# T\n"),
    ("---\ncategories: data-drift\n---\n# T\n", "categories", "stale-model",
     "---\ncategories: [data-drift, stale-model]\n---\n# T\n"),
    ("---\nfacets: [people]\n---\n# T\n", "facets", "people", "---\nfacets: [people]\n---\n# T\n"),
    ("---\r\ntitle: T\r\n---\r\nbody\r\n", "facets", "people", "---\ntitle: T\nfacets: [people]\n---\nbody\n"),
    ("---\n---\n# T\n", "facets", "people", "---\nfacets: [people]\n---\n# T\n"),
    ("---\nfacets: {a: 1}\n---\n# T\n", "facets", "people", None),
    ("---\n# facets: [processes]\n---\n# T\n", "facets", "people", "---\n# facets: [processes]\nfacets: [people]\n---\n# T\n"),
]


def test_keeping_a_suggestion_edits_the_front_matter_in_its_own_style(page):
    sign_in(page)
    page.goto("/new")
    for before, key, label, after in FRONT_MATTER_CASES:
        assert page.evaluate("([m, k, l]) => withLabel(m, k, l)", [before, key, label]) == after, before


@pytest.mark.parametrize(("before", "key", "label", "after"), [case for case in FRONT_MATTER_CASES if case[3]])
def test_the_edited_front_matter_gives_the_kept_label(before, key, label, after):
    from kb.parse import parse_bytes

    parsed = parse_bytes(after.encode())
    assert label in parsed.human_labels[key] and not parsed.warnings
