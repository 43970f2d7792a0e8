"""The IR: frozen pydantic models, one per step kind.

This module is the contract between the compiler, the backends and the runtime. It imports
nothing but pydantic, so the runtime (and a worker image with only `mlopsc[runtime]`) can load a
step's config with `ir.step_from_json(...)` without lark, networkx or jinja2.

Positions: every node carries `span`; every field value that can be wrong has its own span in
`spans[field_name]` (for list items, `spans["field.N"]`). Spans are recorded at parse time.

Ports: each step kind declares its OUTPUTS (port name -> PortType). A `Ref` names a step and,
optionally, a port (`penguins_split.train`); `Ref.port is None` means the kind's default port.
A step's inputs are its Ref-typed fields (see `Step.inputs()`); `after` adds ordering only.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .expression import Expr

PortType = Literal["Dataset", "Model", "Metrics", "Report"]
# What the artifact at a port is, on disk: Parquet file, MLflow model folder, JSON document.
PORT_SUFFIX: dict[str, str] = {"Dataset": ".parquet", "Model": "", "Metrics": ".json", "Report": ".json"}


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(Node):
    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# ---------------------------------------------------------------- values


class Ref(Node):
    """A reference to another step's output: `step` or `step.port`."""

    kind: Literal["ref"] = "ref"
    step: str
    port: str | None = None
    span: Span | None = None

    def __str__(self) -> str:
        return self.step if self.port is None else f"{self.step}.{self.port}"


class ParamRef(Node):
    """`params.NAME`: bound to the pipeline parameter's value at run time."""

    kind: Literal["param"] = "param"
    name: str
    span: Span | None = None


class EnvRef(Node):
    """`env("NAME")`: read from the environment of the process that runs the step."""

    kind: Literal["env"] = "env"
    name: str
    span: Span | None = None


class SecretRef(Node):
    """`secret("NAME")` or `secret("NAME", "key")`: a platform secret (Kubernetes secret, Prefect
    Secret block); on the local runner, the environment variable NAME (upper-cased, `-` -> `_`).
    Never resolved at compile time and never written into generated files."""

    kind: Literal["secret"] = "secret"
    name: str
    key: str | None = None
    span: Span | None = None


class Expression(Node):
    """A `filter` or `expect` string, parsed: `text` as written (decoded), `tree` what it means
    (see expression.py). `span` is the string's, quotes included; offsets in the tree count from
    the character after the opening quote."""

    text: str
    tree: Expr
    span: Span | None = None

    def __str__(self) -> str:
        return self.text


Scalar = Union[bool, int, float, str, None]
# A value an option may hold: a literal, a list of literals, or a reference resolved later.
Value = Union[Scalar, ParamRef, EnvRef, SecretRef, list[Any]]
Number = Union[int, float, ParamRef]


class Param(Node):
    name: str
    type: Literal["int", "float", "str", "bool"]
    default: Scalar = None
    description: str | None = None
    span: Span | None = None


# ---------------------------------------------------------------- step options


class Resources(Node):
    cpu: float | None = None          # cores, e.g. 2 or 0.5
    memory: str | None = None         # Kubernetes quantity, e.g. "4Gi"
    gpu: int | None = None
    gpu_type: str | None = None       # e.g. "nvidia-tesla-t4"
    spans: dict[str, Span] = {}


class Step(Node):
    """Fields shared by every step kind."""

    KIND: ClassVar[str] = ""
    OUTPUTS: ClassVar[dict[str, str]] = {}
    DEFAULT_PORT: ClassVar[str | None] = None

    name: str
    span: Span | None = None
    spans: dict[str, Span] = {}
    resources: Resources | None = None
    retries: int = 0
    retry_delay: float = 0          # seconds between retries
    timeout: float | None = None    # seconds
    cache: bool = True
    after: tuple[Ref, ...] = ()

    def inputs(self) -> dict[str, Ref]:
        """Data inputs: every Ref-typed field but `after`, keyed by field name."""
        return {k: v for k, v in self if isinstance(v, Ref)}

    def refs(self) -> list[tuple[str, Ref]]:
        """All references, `after` included, as (field, ref) pairs."""
        return list(self.inputs().items()) + [("after", r) for r in self.after]


# ---------------------------------------------------------------- step kinds


class Source(Step):
    KIND: ClassVar[str] = "source"
    OUTPUTS: ClassVar[dict[str, str]] = {"data": "Dataset"}
    DEFAULT_PORT: ClassVar[str | None] = "data"

    kind: Literal["source"] = "source"
    format: Literal["csv", "parquet", "sql", "served"]
    path: str | None = None                           # csv / parquet, relative to the spec's folder
    connection: EnvRef | SecretRef | None = None      # sql: an SQLAlchemy URL, by reference only
    query: str | None = None                          # sql
    table: str | None = None                          # sql
    filter: Expression | None = None                  # rows to keep, before column selection
    columns: tuple[str, ...] | None = None
    types: dict[str, str] = {}                        # declared coercions: column -> int|float|str|bool|category|datetime
    # Columns whose values that do not parse as their type (declared, else float) become missing
    # and are counted, where a declared type alone fails the step on them.
    coerce: tuple[str, ...] = ()
    # served: the prediction log of `mlopsc serve` for this deploy step, joined with its feedback.
    served: str | None = None                         # the deploy step's name
    window: float | None = None                       # seconds back from now; None = the whole log
    log: str | None = None                            # the log's URI; None = the state folder's
    registry: str | None = None                       # filled by a pass from the deploy


class ColumnRule(Node):
    kind: Literal["column"] = "column"
    column: str
    dtype: Literal["int", "float", "str", "bool", "category", "datetime"] | None = None
    nullable: bool | None = None
    max_null_fraction: float | None = None
    min: Number | None = None
    max: Number | None = None
    allowed: tuple[Scalar, ...] | None = None
    unique: bool = False
    regex: str | None = None
    span: Span | None = None
    spans: dict[str, Span] = {}


class RowsRule(Node):
    kind: Literal["rows"] = "rows"
    op: Literal[">=", ">", "<=", "<", "=="]
    value: int | ParamRef
    span: Span | None = None


class ExpressionRule(Node):
    """`expect "bill_length_mm > bill_depth_mm"`: an expression true on every row."""

    kind: Literal["expression"] = "expression"
    expression: Expression
    span: Span | None = None


CheckRule = Annotated[Union[ColumnRule, RowsRule, ExpressionRule], Field(discriminator="kind")]


class Check(Step):
    KIND: ClassVar[str] = "check"
    OUTPUTS: ClassVar[dict[str, str]] = {"report": "Report"}
    DEFAULT_PORT: ClassVar[str | None] = "report"

    kind: Literal["check"] = "check"
    data: Ref
    rules: tuple[CheckRule, ...] = ()
    on_fail: Literal["stop", "warn"] = "stop"


class Split(Step):
    KIND: ClassVar[str] = "split"
    OUTPUTS: ClassVar[dict[str, str]] = {"train": "Dataset", "test": "Dataset"}
    DEFAULT_PORT: ClassVar[str | None] = None   # a split has two outputs: name one

    kind: Literal["split"] = "split"
    data: Ref
    test_size: float | ParamRef = 0.25
    seed: int | ParamRef = 0
    stratify: str | None = None
    time_column: str | None = None      # split by time: the latest test_size fraction is the test set


class Estimator(Node):
    name: str                            # dotted, e.g. sklearn.ensemble.RandomForestClassifier
    params: dict[str, Value] = {}
    span: Span | None = None
    spans: dict[str, Span] = {}


class Preprocessing(Node):
    """Overrides of the automatic preprocessing (impute + scale numerics, impute + encode categoricals:
    `auto` is the estimator's native categorical support when it has one, else one-hot)."""

    numeric_impute: Literal["mean", "median", "most_frequent", "none"] = "median"
    scale: bool = True
    categorical_impute: Literal["most_frequent", "constant", "none"] = "most_frequent"
    encode: Literal["auto", "onehot", "ordinal"] = "auto"
    max_categories: int | None = None            # levels kept per categorical; None = the runtime's default
    numeric: tuple[str, ...] | None = None       # force these features numeric
    categorical: tuple[str, ...] | None = None   # force these features categorical
    spans: dict[str, Span] = {}


class Tune(Node):
    method: Literal["grid", "random"]
    space: dict[str, tuple[Scalar, ...]]
    cv: int = 5
    metric: str | None = None         # a metric name from the evaluate vocabulary; None = estimator default
    n_iter: int = 10                  # random search only
    seed: int = 0
    span: Span | None = None
    spans: dict[str, Span] = {}


class Train(Step):
    KIND: ClassVar[str] = "train"
    OUTPUTS: ClassVar[dict[str, str]] = {"model": "Model"}
    DEFAULT_PORT: ClassVar[str | None] = "model"

    kind: Literal["train"] = "train"
    data: Ref
    target: str
    features: tuple[str, ...] | None = None      # None = every column but the target
    task: Literal["classification", "regression"] | None = None   # None = from the estimator
    estimator: Estimator
    preprocessing: Preprocessing = Preprocessing()
    tune: Tune | None = None
    seed: int | ParamRef = 0
    # Rows whose target is missing: fail the step, or drop them (counted in the result; an
    # evaluate step of the model then drops them too, as the model's metadata says).
    missing_target: Literal["fail", "drop"] = "fail"


class Importance(Node):
    """`importance { repeats = 5  seed = 0 }` in an evaluate step: permutation importance of each
    feature on the evaluated data, scored with the step's first metric."""

    repeats: int = 5
    seed: int = 0
    spans: dict[str, Span] = {}


class Evaluate(Step):
    KIND: ClassVar[str] = "evaluate"
    OUTPUTS: ClassVar[dict[str, str]] = {"metrics": "Metrics", "predictions": "Dataset"}
    DEFAULT_PORT: ClassVar[str | None] = "metrics"

    kind: Literal["evaluate"] = "evaluate"
    model: Ref
    data: Ref
    metrics: tuple[str, ...]
    importance: Importance | None = None


class ThresholdRule(Node):
    """`require accuracy >= 0.9`"""

    kind: Literal["threshold"] = "threshold"
    metric: str
    op: Literal[">=", ">", "<=", "<"]
    value: Number
    span: Span | None = None


class ChampionRule(Node):
    """`require f1_macro >= champion.f1_macro - 0.01`: compare with the model that holds the
    registry alias now. `delta` is signed: `champion.m - 0.01` gives delta = -0.01."""

    kind: Literal["champion"] = "champion"
    metric: str
    op: Literal[">=", ">", "<=", "<"]
    delta: Number = 0
    span: Span | None = None


class FairnessRule(Node):
    """`require demographic_parity(sex) <= 0.1`: the largest difference across the groups of a
    sensitive column, computed on the evaluate step's predictions."""

    kind: Literal["fairness"] = "fairness"
    measure: Literal["demographic_parity", "equal_opportunity"]
    column: str
    op: Literal["<=", "<"]
    value: Number
    span: Span | None = None


GateRule = Annotated[Union[ThresholdRule, ChampionRule, FairnessRule], Field(discriminator="kind")]


class Gate(Step):
    KIND: ClassVar[str] = "gate"
    OUTPUTS: ClassVar[dict[str, str]] = {"decision": "Report"}
    DEFAULT_PORT: ClassVar[str | None] = "decision"

    kind: Literal["gate"] = "gate"
    metrics: Ref                            # an evaluate step's metrics
    predictions: Ref | None = None          # set by a pass when fairness rules need them
    rules: tuple[GateRule, ...] = ()
    no_champion: Literal["pass", "fail"] = "pass"
    registry: str | None = None             # whose champion; filled from the deploy it guards
    alias: str = "champion"


class Serving(Node):
    replicas: int = 1
    port: int = 8080
    # Adaptive batching of `mlopsc serve`: concurrent requests are answered by one predict call of
    # at most this many rows, gathered for at most this long after the first one arrives.
    max_batch_size: int = 32
    max_batch_wait_ms: int = 5
    cpu: float | None = None
    memory: str | None = None
    spans: dict[str, Span] = {}


class Deploy(Step):
    KIND: ClassVar[str] = "deploy"
    OUTPUTS: ClassVar[dict[str, str]] = {"release": "Report"}
    DEFAULT_PORT: ClassVar[str | None] = "release"

    kind: Literal["deploy"] = "deploy"
    model: Ref
    registry: str
    alias: str = "champion"
    serving: Serving | None = None


class Score(Step):
    """Batch scoring: predictions of a registered (or just trained) model over a dataset."""

    KIND: ClassVar[str] = "score"
    OUTPUTS: ClassVar[dict[str, str]] = {"predictions": "Dataset"}
    DEFAULT_PORT: ClassVar[str | None] = "predictions"

    kind: Literal["score"] = "score"
    data: Ref
    model: Ref | None = None          # a train step's model ...
    registry: str | None = None       # ... or a registered model by name and alias
    alias: str = "champion"
    output: str | None = None         # also write the predictions here (.parquet or .csv)


class DriftRule(Node):
    """`drift psi(bill_length_mm) > 0.2 -> retrain`, `drift ks(x) pvalue < 0.01 -> alert`.
    column None with statistic on `prediction` means drift of the model's predictions."""

    statistic: Literal["psi", "ks", "chi2"]
    column: str
    measure: Literal["value", "pvalue"] = "value"
    op: Literal[">", ">=", "<", "<="]
    threshold: Number
    action: Literal["alert", "retrain"]
    span: Span | None = None


class MetricRule(Node):
    """`metric accuracy < 0.85 -> retrain`: a metric of the served model on the rows of `current`
    that have feedback labels."""

    kind: Literal["metric"] = "metric"
    metric: str
    op: Literal[">", ">=", "<", "<="]
    threshold: Number
    action: Literal["alert", "retrain"]
    span: Span | None = None
    spans: dict[str, Span] = {}


class LatencyRule(Node):
    """`latency p95 > 50ms -> alert`: a percentile of the requests' latency in `current`."""

    kind: Literal["latency"] = "latency"
    percentile: Literal["p50", "p90", "p95", "p99"]
    op: Literal[">", ">=", "<", "<="]
    threshold_ms: Number
    action: Literal["alert", "retrain"]
    span: Span | None = None
    spans: dict[str, Span] = {}


MonitorRule = Annotated[Union[MetricRule, LatencyRule], Field(discriminator="kind")]


class Monitor(Step):
    KIND: ClassVar[str] = "monitor"
    OUTPUTS: ClassVar[dict[str, str]] = {"report": "Report"}
    DEFAULT_PORT: ClassVar[str | None] = "report"

    kind: Literal["monitor"] = "monitor"
    model: Ref | None = None
    reference: Ref
    current: Ref
    drift: tuple[DriftRule, ...] = ()
    rules: tuple[MonitorRule, ...] = ()      # metric and latency rules, on a served `current`
    # Fewer rows with feedback labels than this: a metric rule is "not evaluated", not judged.
    min_labels: int = 20
    schedule: str | None = None
    webhook: EnvRef | SecretRef | None = None
    # Filled by a pass from the deploy of `model`, if any: prediction drift then scores the
    # registered model (registry@alias) instead of re-running training.
    registry: str | None = None
    alias: str = "champion"


AnyStep = Annotated[
    Union[Source, Check, Split, Train, Evaluate, Gate, Deploy, Score, Monitor], Field(discriminator="kind")
]
STEP_KINDS: dict[str, type[Step]] = {
    cls.KIND: cls for cls in (Source, Check, Split, Train, Evaluate, Gate, Deploy, Score, Monitor)
}


class Pipeline(Node):
    name: str
    description: str | None = None
    schedule: str | None = None
    params: tuple[Param, ...] = ()
    steps: tuple[AnyStep, ...] = ()
    estimators: tuple[str, ...] = ()   # allowed beyond scikit-learn: `allow estimators [...]`
    source_file: str = "<string>"
    spec_hash: str = ""                 # sha256 of the spec text
    span: Span | None = None
    spans: dict[str, Span] = {}

    def step(self, name: str) -> AnyStep:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


def step_from_json(data: dict | str) -> Step:
    """Load one step's config (as written by a generator) back into its model."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(AnyStep)
    return adapter.validate_json(data) if isinstance(data, str) else adapter.validate_python(data)
