"""Example data from scikit-learn's bundled sets (they ship in the package: no download).

    python specs/data/make_data.py                     # (re)writes specs/data/diabetes.csv
    python specs/data/make_data.py --wine-db PATH      # also builds the wine SQLite file at PATH

`diabetes.csv` is committed (442 rows); the wine database is built where a test or a user wants it,
and `specs/wine_sql.mlops` finds it through `WINE_DB_URL=sqlite:///PATH`.
"""
from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_diabetes(path: Path = HERE / "diabetes.csv") -> Path:
    """The raw (unscaled) measurements; `progression` is the disease progression one year later."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    # sklearn encodes sex as 1.0 / 2.0 floats; as a category it reads as what it is.
    frame["sex"] = frame["sex"].map({1.0: "a", 2.0: "b"})
    frame.to_csv(path, index=False, float_format="%.6g")
    return path


def write_wine_db(path: Path) -> Path:
    """Table `wines`: 13 chemical measurements and the `cultivar` (class_0 .. class_2), 178 rows."""
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True)
    frame = wine.frame.rename(columns={"od280/od315_of_diluted_wines": "od280_od315", "target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map(dict(enumerate(wine.target_names)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        frame.to_sql("wines", conn, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wine-db", type=Path, help="also build the wine SQLite database here")
    args = parser.parse_args()
    print(write_diabetes())
    if args.wine_db:
        print(write_wine_db(args.wine_db))


if __name__ == "__main__":
    main()
