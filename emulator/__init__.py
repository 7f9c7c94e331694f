"""A Binance USD-M futures compatible venue with fault injection, for tests, benchmarks and drills."""
