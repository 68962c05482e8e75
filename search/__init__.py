"""Search: accuracy estimators, ask/tell strategies, and the hardware-tailored driver.

Import from the submodules (`search.protocols`, `search.estimators`, `search.strategies`,
...); this package module stays empty so that importing one part never imports torch or
the others.
"""
