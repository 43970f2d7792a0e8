"""The automatic preprocessing of a train step: one ColumnTransformer that fits its estimator.

Numbers and booleans are imputed (median) and scaled; text and categories are imputed (most
frequent) and encoded. What fits an estimator is read from the estimator itself (its parameters and
scikit-learn tags), never from a list of class names, so estimators from other packages get the
same treatment:

- `encode = auto` (the default): an estimator with native categorical support, one that has a
  `categorical_features` parameter (HistGradientBoostingClassifier/Regressor), gets ordinal codes
  and is told which columns hold them; it then splits on sets of categories, where a one-hot
  encoding would hand it one weak 0/1 column per level. Every other estimator gets one-hot.
- One-hot keeps at most `max_categories` columns per feature (default 20): the most frequent
  levels get a column each, the rarer ones share one "infrequent" column, and levels never seen
  in training land there too. Why not more: a 200-level column would become 200 columns (1.6 GB
  dense on a million rows) for levels mostly too rare to learn from. Why not target or frequency
  encoding: grouping needs no labels (target encoding must cross-fit to avoid leaking them, adds a
  column per class and draws random folds), and it keeps every common level exactly.
- Ordinal codes for native support are capped at the estimator's `max_bins` (255 by default),
  the most categories it accepts; `max_categories` lowers the cap. `encode = ordinal` caps only
  when `max_categories` is set: codes do not widen the data.
- A cap that no column reaches is left out of the encoder: it would change no code or column, and
  scikit-learn applies one by counting every value in Python (5 s for three text columns of
  800,000 rows, a third of the scale bench's fit).
- The output is dense unless the estimator's tags say it takes sparse input (`input_tags.sparse`):
  a sparse one-hot is what makes HistGradientBoosting fail with "dense data is required".
- An estimator that takes only non-negative input (`input_tags.positive_only`, e.g. MultinomialNB)
  gets numbers scaled to [0, 1], clipped so that served values outside the training range stay
  valid, instead of standardised ones.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from .core import require_columns, step_error

if TYPE_CHECKING:
    import pandas as pd

ONEHOT_MAX_CATEGORIES = 20   # one-hot columns per categorical feature unless the spec says otherwise


def column_kinds(step: ir.Train, X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features: forced by `preprocessing`, else by dtype."""
    import pandas as pd
    from pandas.api import types as t

    pp = step.preprocessing
    forced_num, forced_cat = set(pp.numeric or ()), set(pp.categorical or ())
    require_columns(step, list(X.columns), sorted(forced_num | forced_cat), role="preprocessing column",
                    span=pp.spans.get("numeric") or pp.spans.get("categorical"))
    numeric, categorical = [], []
    for col in X.columns:
        s = X[col]
        if col in forced_cat:
            categorical.append(col)
        elif col in forced_num:
            if not t.is_numeric_dtype(s) and pd.to_numeric(s, errors="coerce").isna().sum() > s.isna().sum():
                raise step_error(step, f"feature {col!r} is forced numeric but holds text", "preprocessing",
                                 expected="numbers", found=f"dtype {s.dtype}, e.g. {s.dropna().iloc[0]!r}")
            numeric.append(col)
        elif t.is_numeric_dtype(s):   # booleans included: 0/1 after imputation
            numeric.append(col)
        elif t.is_string_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            categorical.append(col)
        else:
            raise step_error(step, f"feature {col!r} has dtype {s.dtype}, which the model cannot take",
                             "features",
                             expected="numbers, booleans, text or categories (derive numbers from dates first)",
                             found=f"dtype {s.dtype}")
    return numeric, categorical


def encoding(step: ir.Train, estimator: Any) -> str:
    """`native`, `onehot` or `ordinal`: how this train step encodes its categorical features."""
    if step.preprocessing.encode != "auto":
        return step.preprocessing.encode
    return "native" if "categorical_features" in estimator.get_params() else "onehot"


def _input_tags(estimator: Any) -> Any:
    """The estimator's scikit-learn input tags; the defaults (dense, any sign) when it has none
    that can be read, e.g. a meta-estimator whose inner estimator is not set yet."""
    from sklearn.utils import InputTags, get_tags

    try:
        return get_tags(estimator).input_tags
    except (AttributeError, TypeError):
        return InputTags()


def build_preprocessor(step: ir.Train, estimator: Any, numeric: list[str], categorical: list[str],
                       most_levels: int | None = None) -> Any:
    """The ColumnTransformer for this estimator. With native categorical support, also sets the
    estimator's `categorical_features` to the code columns (unless the spec set it): the
    transformer puts the numeric columns first, then one code column per categorical feature.
    `most_levels`: the most distinct values (missing included) of a categorical column in the
    data to fit, when known; a cap above it is not set."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

    pp, tags, encode = step.preprocessing, _input_tags(estimator), encoding(step, estimator)
    num_steps, cat_steps = [], []
    if pp.numeric_impute != "none":
        num_steps.append(("impute", SimpleImputer(strategy=pp.numeric_impute)))
    if pp.scale:
        num_steps.append(("scale", MinMaxScaler(clip=True) if tags.positive_only else StandardScaler()))
    if pp.categorical_impute != "none":
        cat_steps.append(("impute", SimpleImputer(strategy=pp.categorical_impute, fill_value="missing")))
    if encode == "onehot":
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=tags.sparse,
                                max_categories=_cap(pp.max_categories or ONEHOT_MAX_CATEGORIES, most_levels))
    else:
        limit = pp.max_categories
        if encode == "native":
            bins = estimator.get_params().get("max_bins")   # the most categories it takes, if it says
            limit = min(limit or bins, bins) if bins else limit
            if categorical and "categorical_features" not in step.estimator.params:
                codes = range(len(numeric), len(numeric) + len(categorical))
                estimator.set_params(categorical_features=list(codes))
        # Unknown levels get -1: a native-categorical estimator reads negative codes as missing.
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                 max_categories=_cap(limit, most_levels))
    cat_steps.append(("encode", encoder))
    parts = []
    if numeric:
        parts.append(("numeric", Pipeline(num_steps) if num_steps else "passthrough", numeric))
    if categorical:
        parts.append(("categorical", Pipeline(cat_steps), categorical))
    return ColumnTransformer(parts, remainder="drop")


def _cap(limit: int | None, most_levels: int | None) -> int | None:
    """`limit`, unless every column has fewer levels: then it would group nothing (an unseen
    level is encoded alike either way: -1, or a row of zeros when no "infrequent" column exists)."""
    return None if limit is not None and most_levels is not None and most_levels < limit else limit


def build_pipeline(step: ir.Train, estimator: Any, X: pd.DataFrame) -> tuple[Any, pd.DataFrame, list[str], list[str]]:
    """The unfitted model, a Pipeline of the preprocessing and the estimator; the features it
    is to be fitted on; and their (numeric, categorical) split."""
    from sklearn.pipeline import Pipeline

    numeric, categorical = column_kinds(step, X)
    # Numbers as float: the signature then declares double, so a served request with a missing
    # value in a column that happened to be whole in training is still valid.
    X = X.astype({c: "float64" for c in numeric})
    most_levels = max((X[c].nunique(dropna=False) for c in categorical), default=0)
    preprocess = build_preprocessor(step, estimator, numeric, categorical, most_levels)
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)]), X, numeric, categorical
