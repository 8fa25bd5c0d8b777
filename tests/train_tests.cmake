# The training side of the retraining loop, across processes (owned by train/).

# Distributed training on XGBoost's collective: the tracker (python3-xgboost) and two
# `outpost train --worker` processes on loopback.
outpost_test(train_distributed_test
  SOURCES train_distributed_test.cc
  DEPS outpost_train outpost_testing)
add_dependencies(train_distributed_test outpost)

# `outpost train` against the hub's store (SQLite): records in, registry entries out.
outpost_test(train_command_test
  SOURCES train_command_test.cc
  DEPS outpost_train outpost_hub_store outpost_testing)
add_dependencies(train_command_test outpost)
