"""Pool configuration: file discovery, templating, environment sections, counts, loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyresque.errors import ConfigError
from pyresque.pool.config import (
    AUTO,
    LoaderPoller,
    PoolConfig,
    environment_name,
    find_config_file,
    load_config,
    load_loader,
    parse_config,
    render_template,
)

SOURCE = "config/resque-pool.yml"


def parse(text: str, environment: str | None = None, **env: str) -> dict[str, object]:
    config = parse_config(text, source=SOURCE, environment=environment, env=env)
    return dict(config.groups)


def parse_error(text: str, environment: str | None = None, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=SOURCE, environment=environment, env=env)
    return str(info.value)


# --- finding the file -----------------------------------------------------------------------


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("foo: 1\n")
    return path


@pytest.mark.parametrize(
    ("files", "explicit", "env", "expected"),
    [
        ([], None, {}, None),
        (["resque-pool.yml"], None, {}, "resque-pool.yml"),
        (["config/resque-pool.yml"], None, {}, "config/resque-pool.yml"),
        (["resque-pool.yml", "config/resque-pool.yml"], None, {}, "resque-pool.yml"),
        (["resque-pool.yml", "other.yml"], None, {"RESQUE_POOL_CONFIG": "other.yml"}, "other.yml"),
        (["a.yml", "b.yml"], "a.yml", {"RESQUE_POOL_CONFIG": "b.yml"}, "a.yml"),
        (["resque-pool.yml", "x/y.yml"], "x/y.yml", {}, "x/y.yml"),
        (["resque-pool.yml"], None, {"RESQUE_POOL_CONFIG": ""}, "resque-pool.yml"),
    ],
)
def test_find_config_file_precedence(
    tmp_path: Path,
    files: list[str],
    explicit: str | None,
    env: dict[str, str],
    expected: str | None,
) -> None:
    for name in files:
        touch(tmp_path / name)
    found = find_config_file(explicit, env, tmp_path)
    assert found == (None if expected is None else tmp_path / expected)


def test_find_config_file_absolute_explicit_path(tmp_path: Path) -> None:
    path = touch(tmp_path / "elsewhere" / "pool.yml")
    assert find_config_file(str(path), {}, Path("/nonexistent")) == path


@pytest.mark.parametrize(
    ("explicit", "env", "origin", "name"),
    [
        ("missing.yml", {}, "--config", "missing.yml"),
        (None, {"RESQUE_POOL_CONFIG": "gone.yml"}, "RESQUE_POOL_CONFIG", "gone.yml"),
        ("config", {}, "--config", "config"),  # a directory is not a config file
    ],
)
def test_find_config_file_named_but_missing_is_an_error(
    tmp_path: Path, explicit: str | None, env: dict[str, str], origin: str, name: str
) -> None:
    touch(tmp_path / "config" / "resque-pool.yml")
    with pytest.raises(ConfigError) as info:
        find_config_file(explicit, env, tmp_path)
    assert origin in str(info.value)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        (None, {}, None),
        ("staging", {"RACK_ENV": "production"}, "staging"),
        (None, {"RACK_ENV": "a", "RAILS_ENV": "b", "RESQUE_ENV": "c"}, "a"),
        (None, {"RAILS_ENV": "b", "RESQUE_ENV": "c"}, "b"),
        (None, {"RESQUE_ENV": "c"}, "c"),
        (None, {"RACK_ENV": "", "RAILS_ENV": "b"}, "b"),
        ("", {"RESQUE_ENV": "c"}, "c"),
    ],
)
def test_environment_name(explicit: str | None, env: dict[str, str], expected: str | None) -> None:
    assert environment_name(explicit, env) == expected


# --- templating -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("foo: ${N}", {"N": "3"}, "foo: 3"),
        ("foo: ${N:-2}", {}, "foo: 2"),
        ("foo: ${N:-2}", {"N": "7"}, "foo: 7"),
        ("foo: ${N:-2}", {"N": ""}, "foo: 2"),  # shell rule: empty takes the default
        ("foo: ${N}", {"N": ""}, "foo: "),
        ("foo: ${N:-}", {}, "foo: "),
        ("'${Q}': 1", {"Q": "a,b"}, "'a,b': 1"),
        ("price: $$5 and $x", {}, "price: $5 and $x"),
        ("a: $${N}", {}, "a: ${N}"),
        ("a: ${A}${B:-x}", {"A": "1"}, "a: 1x"),
        ("a: ${A}", {"A": "${B}"}, "a: ${B}"),  # expanded values are not expanded again
        ("foo: <%= ENV['N'] || 5 %>", {}, "foo: 5"),
        ("foo: <%= ENV['N'] || 5 %>", {"N": "9"}, "foo: 9"),
        ("foo: <%= ENV['N'] || 5 %>", {"N": ""}, "foo: "),  # Ruby rule: "" is truthy
        ('foo: <%= ENV["N"] || "5" %>', {}, "foo: 5"),
        ("foo: <%=ENV['N']||'auto'%>", {}, "foo: auto"),
        ("foo: <%= ENV.fetch('N', 5) %>", {}, "foo: 5"),
        ('foo: <%= ENV.fetch("N", "4") %>', {"N": "1"}, "foo: 1"),
        ('foo: <%= ENV.fetch("N") { 5 } %>', {}, "foo: 5"),
        ("foo: <%= ENV.fetch('N') {'6'} %>", {"N": "2"}, "foo: 2"),
        ("foo: <%= ENV.fetch('N') %>", {"N": "2"}, "foo: 2"),
        ("foo: <%= ENV['N'] %>", {"N": "8"}, "foo: 8"),
        ("<%# a comment %>foo: 1", {}, "foo: 1"),
        (
            "# foo: ${UNSET}\n  # <% system('x') %>\nbar: 1",
            {},
            "# foo: ${UNSET}\n  # <% system('x') %>\nbar: 1",
        ),
    ],
)
def test_render_template(text: str, env: dict[str, str], expected: str) -> None:
    assert render_template(text, env, SOURCE) == expected


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("a: 1\nfoo: ${WORKERS}\n", ["WORKERS", f"{SOURCE}:2", "not set", "${WORKERS:-default}"]),
        ("foo: <%= ENV['WORKERS'] %>", ["WORKERS", f"{SOURCE}:1", "not set"]),
        ("foo: <%= ENV.fetch('WORKERS') %>", ["WORKERS", f"{SOURCE}:1", "no default"]),
        ("a: 1\n\nfoo: ${1BAD}", [f"{SOURCE}:3", "malformed", "${NAME:-default}"]),
        ("foo: ${N:=3}", [f"{SOURCE}:1", "malformed"]),
        ("foo: ${N", [f"{SOURCE}:1", "never closed"]),
        ("foo: <%= ENV['N'] ", [f"{SOURCE}:1", "never closed"]),
        ("a: 1\nb: <%= `rm -rf /` %>", [f"{SOURCE}:2", "unsupported template", "never run code"]),
        ("<% if true %>\nfoo: 1\n<% end %>", [f"{SOURCE}:1", "unsupported template"]),
        ("foo: <%= ENV['N'].to_i * 2 %>", [f"{SOURCE}:1", "<%= ENV['N'].to_i * 2 %>"]),
        ("foo: <%= File.read('/etc/passwd') %>", [f"{SOURCE}:1", "unsupported"]),
        ("foo: <%= ENV[name] || 5 %>", [f"{SOURCE}:1", "unsupported"]),
        ("foo: <%- ENV['N'] -%>", [f"{SOURCE}:1", "unsupported"]),
    ],
)
def test_template_errors_name_file_line_and_problem(text: str, needles: list[str]) -> None:
    message = parse_error(text)
    for needle in needles:
        assert needle in message


def test_templates_never_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    erb = f"foo: <%= File.write('{marker}', 'x'); 1 %>\n"
    with pytest.raises(ConfigError, match="unsupported template"):
        parse_config(erb, source=SOURCE, environment=None, env={})
    # A ${...} default is plain text, never a command substitution.
    shell = f"'${{X:-$(touch {marker})}}': 1\n"
    assert parse(shell) == {f"$(touch {marker})": 1}
    assert not marker.exists()


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "environment", "env", "expected"),
    [
        ("", None, {}, {}),
        ("# only a comment\n", None, {}, {}),
        ("foo: 1\nbar: 2\n", None, {}, {"foo": 1, "bar": 2}),
        ("'*': 2", None, {}, {"*": 2}),
        ("foo,bar: 1\nbar,foo: 2\n", None, {}, {"foo,bar": 1, "bar,foo": 2}),
        ("'foo, bar': 1", None, {}, {"foo, bar": 1}),  # kept verbatim, spaces too
        ("foo: 0", None, {}, {"foo": 0}),
        ("foo: '3'", None, {}, {"foo": 3}),
        ("foo: ' 3 '", None, {}, {"foo": 3}),
        ("foo: auto", None, {}, {"foo": AUTO}),
        ("foo: AUTO", None, {}, {"foo": AUTO}),
        ("'*': ${WORKER_CONCURRENCY:-2}", None, {}, {"*": 2}),
        ("'*': '${WORKER_CONCURRENCY:-2}'", None, {}, {"*": 2}),
        ("'*': ${WORKER_CONCURRENCY:-2}", None, {"WORKER_CONCURRENCY": "auto"}, {"*": AUTO}),
        ("foo: <%= ENV['N'] || 5 %>", None, {"N": "4"}, {"foo": 4}),
        # environment sections: the named one overrides, every mapping-valued key is dropped
        (
            "foo: 1\nbar: 2\nproduction:\n  foo: 5\n  baz: 3\ndevelopment:\n  foo: 0\n",
            "production",
            {},
            {"foo": 5, "bar": 2, "baz": 3},
        ),
        (
            "foo: 1\nproduction:\n  foo: 5\ndevelopment:\n  foo: 0\n",
            None,
            {},
            {"foo": 1},
        ),
        ("foo: 1\nproduction:\n  foo: 5\n", "staging", {}, {"foo": 1}),
        ("production:\n  foo: 5\n", "production", {}, {"foo": 5}),
        # a section with a bad value that is dropped is never validated
        ("foo: 1\ndevelopment:\n  foo: lots\n", "production", {}, {"foo": 1}),
        # a key named like the environment but holding a count is just a group
        ("production: 2\n", "production", {}, {"production": 2}),
        # YAML anchors and merge keys, a common way to share defaults between environments
        (
            "defaults: &d\n  foo: 1\n  bar: 1\nproduction:\n  <<: *d\n  bar: 4\n",
            "production",
            {},
            {"foo": 1, "bar": 4},
        ),
        # the environment's section can itself be templated
        ("${ENVNAME:-production}:\n  foo: 7\n", "production", {}, {"foo": 7}),
    ],
)
def test_parse_config(
    text: str, environment: str | None, env: dict[str, str], expected: dict[str, object]
) -> None:
    assert parse(text, environment, **env) == expected


def test_group_order_is_the_files_with_section_keys_overriding_in_place() -> None:
    text = "c: 1\na: 1\nb: 1\nproduction:\n  a: 9\n  z: 2\n"
    assert list(parse(text, "production")) == ["c", "a", "b", "z"]
    assert parse(text, "production")["a"] == 9


@pytest.mark.parametrize(
    ("text", "environment", "needles"),
    [
        ("foo: lots", None, ["key 'foo'", "expected a worker count", "≥ 0 or 'auto'", "'lots'"]),
        ("foo: -1", None, ["key 'foo'", "expected a worker count", "-1"]),
        ("foo: 1.5", None, ["key 'foo'", "1.5"]),
        ("foo: true", None, ["key 'foo'", "True"]),
        ("foo:", None, ["key 'foo'", "an empty value"]),
        ("foo: ''", None, ["key 'foo'", "an empty string"]),
        ("foo: [1, 2]", None, ["key 'foo'", "a list"]),
        ("foo: '-2'", None, ["key 'foo'", "'-2'"]),
        ("foo: ${N:-many}", None, ["key 'foo'", "'many'"]),
        (
            "foo: 1\nproduction:\n  bar: lots\n",
            "production",
            ["key 'bar'", "section 'production'", "expected a worker count"],
        ),
        ("1: 2", None, ["key 1", "expected a queue list", "quote the key"]),
        ("yes: 2", None, ["key True", "expected a queue list"]),
        ("'': 2", None, ["key ''", "expected a queue list"]),
        ("- foo\n- bar\n", None, ["expected a mapping of queue list to worker count", "a list"]),
        ("just a string", None, ["expected a mapping", "'just a string'"]),
        ("foo: 1\n  bar: 2\n", None, [f"{SOURCE}:2", "invalid YAML"]),
        ("foo: [1\n", None, ["invalid YAML"]),
    ],
)
def test_parse_errors_name_file_key_and_expectation(
    text: str, environment: str | None, needles: list[str]
) -> None:
    message = parse_error(text, environment)
    assert message.startswith(SOURCE)
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "foo: 1\nbar: 2\nfoo: 3\n",
            f"{SOURCE}:3: invalid YAML: duplicate key 'foo' (first on line 1)",
        ),
        (
            "production:\n  foo: 1\n  foo: 2\n",
            f"{SOURCE}:3: invalid YAML: duplicate key 'foo' (first on line 2)",
        ),
        (
            "'a,b': 1\n\"a,b\": 2\n",
            f"{SOURCE}:2: invalid YAML: duplicate key 'a,b' (first on line 1)",
        ),
        ("{foo: 1, foo: 2}", f"{SOURCE}:1: invalid YAML: duplicate key 'foo' (first on line 1)"),
    ],
)
def test_a_duplicate_key_is_refused_with_file_and_line(text: str, expected: str) -> None:
    """PyYAML keeps the last of two equal keys without a word; a hand-written config never means
    that (issue 25)."""
    assert parse_error(text) == expected


def test_a_merge_key_may_be_overridden() -> None:
    text = "defaults: &d\n  foo: 1\nproduction:\n  <<: *d\n  foo: 2\n"
    config = parse_config(text, source=SOURCE, environment="production", env={})
    assert dict(config.groups) == {"foo": 2}


def test_the_spec_example_message() -> None:
    assert parse_error("foo: lots") == (
        "config/resque-pool.yml: key 'foo': expected a worker count "
        "(a whole number ≥ 0 or 'auto'), got 'lots'"
    )


# --- load_config and PoolConfig ---------------------------------------------------------------


def test_load_config_without_a_file_is_an_empty_pool() -> None:
    config = load_config(None, None, {})
    assert dict(config.groups) == {}
    assert config.is_empty


def test_an_empty_pool_without_a_file_says_where_it_looked(tmp_path: Path) -> None:
    config = load_config(None, None, {}, cwd=tmp_path)
    assert config.source == (
        f"no config file: looked for {tmp_path}/resque-pool.yml and "
        f"{tmp_path}/config/resque-pool.yml (--config FILE or $RESQUE_POOL_CONFIG names another)"
    )


def test_load_config_reads_renders_and_applies_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "resque-pool.yml"
    path.write_text("foo: ${N:-1}\nproduction:\n  bar: 2\n")
    config = load_config(path, "production", {"N": "3"})
    assert dict(config.groups) == {"foo": 3, "bar": 2}
    assert config.source == str(path)


def test_load_config_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "resque-pool.yml"
    path.write_text("")
    assert load_config(path, None, {}).is_empty


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "cannot read"), (b"foo: \xff\xfe\n", "not UTF-8")],
)
def test_load_config_unreadable_file(tmp_path: Path, content: bytes | None, needle: str) -> None:
    path = tmp_path / "resque-pool.yml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, None, {})
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_load_config_error_names_the_real_file(tmp_path: Path) -> None:
    path = tmp_path / "config" / "resque-pool.yml"
    path.parent.mkdir()
    path.write_text("foo: lots\n")
    with pytest.raises(ConfigError, match=r"config/resque-pool\.yml: key 'foo': expected"):
        load_config(path, None, {})


@pytest.mark.parametrize(
    ("groups", "empty"),
    [({}, True), ({"foo": 0}, True), ({"foo": 0, "bar": 1}, False), ({"*": AUTO}, False)],
)
def test_pool_config_is_empty(groups: dict[str, int], empty: bool) -> None:
    assert PoolConfig(groups, source="x").is_empty is empty


def test_pool_config_is_frozen_and_owns_its_groups() -> None:
    groups = {"foo": 1}
    config = PoolConfig(groups, source="x")
    groups["bar"] = 2
    assert dict(config.groups) == {"foo": 1}
    with pytest.raises(TypeError):
        config.groups["foo"] = 3  # type: ignore[index]
    assert config == PoolConfig({"foo": 1}, source="x")
    assert repr(AUTO) == "AUTO"


# --- custom loaders -------------------------------------------------------------------------

CALLS: list[str | None] = []


def static_loader(environment: str | None) -> dict[str, object]:
    CALLS.append(environment)
    return {"foo": 1, "bar,baz": "auto", "production": {"foo": 4}}


def bad_loader(environment: str | None) -> dict[str, object]:
    return {"foo": "lots"}


def list_loader(environment: str | None) -> list[str]:
    return ["foo"]


def raising_loader(environment: str | None) -> dict[str, object]:
    raise RuntimeError("redis is down")


class Holder:
    @staticmethod
    def load(environment: str | None) -> dict[str, object]:
        return {"nested": 2}


NOT_CALLABLE = 42
HERE = __name__


def test_loader_is_called_with_the_environment_and_validated() -> None:
    CALLS.clear()
    loader = load_loader(f"{HERE}:static_loader")
    config = loader.load("production")
    assert CALLS == ["production"]
    assert dict(config.groups) == {"foo": 4, "bar,baz": AUTO}
    assert config.source == f"config loader '{HERE}:static_loader'"


def test_loader_spec_may_name_a_dotted_attribute() -> None:
    assert dict(load_loader(f"{HERE}:Holder.load").load(None).groups) == {"nested": 2}


@pytest.mark.parametrize(
    ("function", "needles"),
    [
        ("bad_loader", ["key 'foo'", "expected a worker count", "'lots'"]),
        ("list_loader", ["expected a mapping"]),
        ("raising_loader", ["raised RuntimeError", "redis is down"]),
    ],
)
def test_loader_errors_name_the_loader(function: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_loader(f"{HERE}:{function}").load(None)
    message = str(info.value)
    assert message.startswith(f"config loader '{HERE}:{function}'")
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("no_colon", "expected module:callable"),
        (":fn", "expected module:callable"),
        ("mod:", "expected module:callable"),
        ("pyresque_no_such_module_xyz:fn", "cannot import"),
        (f"{HERE}:missing", "has no attribute 'missing'"),
        (f"{HERE}:NOT_CALLABLE", "not callable"),
    ],
)
def test_load_loader_errors(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_loader(spec)
    assert repr(spec) in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("interval", "throttle", "calls", "checks"),
    [
        # about once a second
        (1.0, 0.0, [0.0], [(0.5, False), (0.99, False), (1.0, True), (3.0, True)]),
        # throttled: never more often than the throttle
        (1.0, 10.0, [0.0], [(1.0, False), (9.9, False), (10.0, True)]),
        # a throttle shorter than the interval changes nothing
        (1.0, 0.5, [0.0], [(0.6, False), (1.0, True)]),
        # the clock went back (should not happen with a monotonic clock): call rather than stall
        (1.0, 0.0, [5.0], [(4.0, True)]),
    ],
)
def test_loader_poller(
    interval: float, throttle: float, calls: list[float], checks: list[tuple[float, bool]]
) -> None:
    poller = LoaderPoller(interval=interval, throttle=throttle)
    assert poller.due(0.0)
    assert poller.next_at() is None
    for at in calls:
        poller.record_call(at)
    for now, due in checks:
        assert poller.due(now) is due, now


def test_loader_poller_reset_makes_it_due_at_once() -> None:
    poller = LoaderPoller(throttle=10.0)
    poller.record_call(100.0)
    assert poller.next_at() == 110.0
    assert not poller.due(101.0)
    poller.reset()
    assert poller.due(101.0)


def test_loader_poller_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        LoaderPoller(interval=0)
    with pytest.raises(ValueError):
        LoaderPoller(throttle=-1)
