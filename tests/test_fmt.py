"""fmt: canonical, idempotent, keeps comments, never changes what a spec means."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlopsc.compiler.cli import fmt
from mlopsc.compiler.errors import SpecError
from mlopsc.compiler.fmt import format_spec
from mlopsc.compiler.parser import parse
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parent.parent
SPECS = specs_in(ROOT / "specs")


def meaning(text: str) -> dict:
    """The IR of a spec without positions and without the hash of its text."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("span", "spans", "spec_hash")}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value
    return strip(parse(text, "x.mlops").model_dump())


def comments(text: str) -> list[str]:
    return sorted(m.group().rstrip() for m in re.finditer(r"#[^\n]*", re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)))


def assert_round_trip(text: str) -> str:
    once = format_spec(text)
    assert format_spec(once) == once, "fmt is not idempotent"
    assert meaning(once) == meaning(text), "fmt changed the IR"
    assert comments(once) == comments(text), "fmt lost or changed a comment"
    return once


MESSY = [
    # everything on one line, odd spacing
    ('pipeline   p{source a{csv="a.csv" filter="x > 1"}split s from a{test_size=0.2 seed=1 stratify=y}'
    'train t on s.train{target=y estimator=sklearn.tree.DecisionTreeClassifier{max_depth=3}'
    'tune grid{max_depth=[2,3,4]}cv=3 metric=accuracy}}'),
    # comments everywhere
    '''# header comment

# second header
pipeline p {   # after the opening brace
  description = "d"   # trailing
  # before params
  params {
    # inside params
    n: int = 3 "count"  # trailing in params
  }


  source a { csv = "a # not a comment.csv" }  # after a one-line step
  check c on a {
    rows >= 10   # rows
    column x: float between 1 and 2,   # inside a rule
      nulls <= 0.1
    # before the closing brace
  }
  train t on a {
    target = y
    estimator = sklearn.linear_model.Ridge {  # ctor comment
      alpha = 1.0
    }
    tune grid { alpha = [1, 2] }  # after tune
    cv = 3  # the cv
    metric = rmse
    features = [
      a,  # first
      b
    ]
  }
}
# footer
''',
    # long lines force blocks open; blank lines collapse to one
    ('pipeline p {\n\n\n  source a { csv = "a.csv" }\n\n\n\n  train t on a { target = y\n'
    '  estimator = sklearn.ensemble.RandomForestClassifier { n_estimators = 300  max_depth = 6  '
    'min_samples_leaf = 2  max_features = "sqrt" }\n'
    '  tune random { n_estimators = [100, 200, 300, 400, 500]  max_depth = [2, 4, 6, 8, 10, 12]  '
    'min_samples_leaf = [1, 2, 4] } cv = 5  metric = f1_macro  n_iter = 5  seed = 3\n'
    '  resources { cpu = 2  memory = "4Gi"  gpu = 1  gpu_type = "nvidia-tesla-t4-very-long-name-indeed-yes" } }\n}\n'),
    # every rule form, signs and escapes
    ('pipeline p { allow estimators ["x.Y"] params { a: float = -0.5 } '
    'source a { sql = secret("db", "url")  table = t  types { x: int } columns = [x, "y z"] } '
    'check c on a { column x in [1, -2, "q\\"q"] column y: str matches "^\\\\d+$", not nullable, unique '
    'column z >= params.a, <= 3 expect "x > 0" on_fail = warn } '
    'gate g on e { require f1 >= champion.f1 - 0.01 require demographic_parity(sex) <= 0.1 '
    'require acc > 0.5 no_champion = fail } '
    'monitor m { reference = a current = a drift ks(x) pvalue < 0.01 -> alert '
    'webhook = env("HOOK") } deploy d from t { registry = "r" serving { replicas = 2 } after = [g, c] } }'),
    # a served source and monitor rules; `metric` and `latency` still work as keys and names
    ('pipeline p { params { metric: str = "m"  latency: float = 1 } source s { served = d window="7d" '
    'log = "s3://b/log" types { latency: float } } train t on s { target = y estimator = '
    'sklearn.tree.DecisionTreeClassifier {} tune grid { max_depth = [2] } cv = 2 metric = accuracy } '
    'monitor m { reference = s current = s metric accuracy<0.85->retrain latency p95 > 50 ms -> alert '
    'latency p99>=0.2s->retrain latency p90 > params.latency ms -> alert metric f1_macro < params.latency -> alert '
    'min_labels = 5 } }'),
]


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_examples_round_trip(spec: Path):
    assert_round_trip(spec.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", MESSY, ids=[f"messy{i}" for i in range(len(MESSY))])
def test_messy_inputs_round_trip(text: str):
    assert_round_trip(text)


def test_canonical_layout():
    text = ('# spec\npipeline p{source a{csv="a.csv"   } # src\n'
            'train t on a{target=y estimator=sklearn.linear_model.Ridge{alpha=1}\n\n\nresources{cpu=2}'
            ' tune grid{alpha=[1,2]} cv=3}}')
    assert format_spec(text) == '''# spec
pipeline p {
  source a {
    csv = "a.csv"
  }  # src

  train t on a {
    target = y
    estimator = sklearn.linear_model.Ridge { alpha = 1 }

    resources { cpu = 2 }
    tune grid { alpha = [1, 2] }  cv = 3
  }
}
'''


def test_comment_inside_a_one_line_construct_moves_above_it():
    out = assert_round_trip('pipeline p {\n  evaluate e {\n    model = m  data = d\n    metrics = [a,  # the first\n      b]\n  }\n}\n')
    assert "    # the first\n    metrics = [a, b]\n" in out


def test_comments_between_tune_and_its_options_stay_before_it():
    out = assert_round_trip('pipeline p {\n  train t on a {\n    target = y  estimator = a.B\n    tune grid { x = [1] }\n    # why 3\n'
                            '    cv = 3\n  }\n}\n')
    assert "    # why 3\n    tune grid { x = [1] }  cv = 3\n" in out


def test_fmt_refuses_what_does_not_parse():
    with pytest.raises(SpecError) as caught:
        format_spec("pipeline p { source a { csv = } }", "bad.mlops")
    assert caught.value.diagnostics[0].span.file == "bad.mlops"


def test_fmt_keeps_specs_it_cannot_build():
    """fmt needs only the syntax: a misspelt key is laid out like any other (check reports it)."""
    assert format_spec('pipeline p { source a { cvs = "x" } }') == 'pipeline p {\n  source a {\n    cvs = "x"\n  }\n}\n'


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(SpecError) as caught:
        format_spec("pipeline p { x = " + "[" * 3000 + "]" * 3000 + " }")
    assert caught.value.diagnostics[0].code == "E107"


def test_fmt_of_a_folder_rewrites_its_specs_and_leaves_state_hidden_and_venv_folders_alone(tmp_path):
    messy = 'pipeline p{source a{csv="a.csv"}}'
    rewritten, left_alone = ["p.mlops", "sub/q.mlops"], [".mlopsc/s.mlops", ".mlops/t.mlops", ".venv/u.mlops"]
    for rel in rewritten + left_alone:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(messy)
    assert CliRunner().invoke(fmt, [str(tmp_path)]).exit_code == 0
    assert [(tmp_path / rel).read_text() for rel in rewritten] == [format_spec(messy)] * 2
    assert [(tmp_path / rel).read_text() for rel in left_alone] == [messy] * 3
    assert CliRunner().invoke(fmt, ["--check", str(tmp_path)]).exit_code == 0
