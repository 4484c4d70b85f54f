"""`python -m cnngraph ...` runs the command line (cli.py): how MPI launchers start the workers
of a data-parallel run, `mpirun -n 4 python -m mpi4py -m cnngraph train SPEC`."""
from cli import main

main(prog_name="cnngraph")
