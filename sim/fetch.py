"""``python -m sim.fetch [data.dir=DIR] [data.url=URL]``: download the FRED series.

Each series the project reads (:data:`sim.marketdata.SERIES`) is downloaded from FRED's
public CSV service into the data directory (default: the local cache named in the README)
with pooch, which keeps a file it has already downloaded.  ``fetch.refresh=true`` downloads
again (FRED revises and extends its series).  Every file is read back with the project's
reader before the command reports success, so an error page saved as CSV is caught here.
Offline, the command ends with one line saying what to download by hand and where to put it.
"""
from __future__ import annotations

import sys
from pathlib import Path

from sim.marketdata import SERIES, DataError, data_dir, read_series

EXIT_ERROR = 2


class FetchError(RuntimeError):
    """A download that failed (offline, unreachable server, HTTP error)."""


def fetch(directory: str | None, url: str, refresh: bool = False, names=None,
          progress: bool = True) -> list[Path]:
    """Download every series (or ``names``) into ``directory``; return the files."""
    import pooch

    pooch.get_logger().setLevel("WARNING")
    target = data_dir(directory)
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for name in names or SERIES:
        path = target / f"{name}.csv"
        if refresh and path.exists():
            path.unlink()
        source = url.format(series=name)
        try:
            got = pooch.retrieve(source, known_hash=None, fname=path.name, path=target,
                                 progressbar=False)
        except Exception as err:  # requests' ConnectionError, HTTPError, timeouts ...
            manual = url.format(series="<SERIES>")
            raise FetchError(
                f"cannot download {name} from {source} ({type(err).__name__}); offline, download "
                f"{', '.join(names or SERIES)} by hand from {manual} and save each as "
                f"<SERIES>.csv in {target} (or set data.dir to a folder that has them)") from None
        try:
            series = read_series(Path(got), name, SERIES[name][0])
        except DataError:
            Path(got).unlink(missing_ok=True)  # a bad download must not be kept as cached
            raise
        if progress:
            print(f"{name}: {series.first} to {series.last} -> {got}")
        files.append(Path(got))
    return files


def main(argv=None) -> None:
    from sim.compose import check_overrides, load_config

    args = list(sys.argv[1:] if argv is None else argv)
    from sim.validate import ConfigError

    refresh = False
    try:
        for a in list(args):
            if a.startswith("fetch.refresh="):
                word = a.split("=", 1)[1].lower()
                if word not in ("1", "true", "yes", "0", "false", "no"):
                    raise ConfigError("fetch.refresh", word, "true or false")
                refresh = word in ("1", "true", "yes")
                args.remove(a)
        problem = check_overrides(args)
        if problem:
            raise ConfigError("overrides", args, problem, message=problem)
        cfg = load_config(args)
        files = fetch(cfg.data.dir, cfg.data.url, refresh=refresh)
    except (FetchError, DataError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    print(f"{len(files)} series in {files[0].parent}")


if __name__ == "__main__":
    main()
