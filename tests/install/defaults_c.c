/* The C half of defaults.cpp: each _INIT as C spells it, in static objects
 * (so their padding is zero), for the C++ half to compare with its own. */
#include <aredis/aredis.h>

extern const aredis_options aredis_test_c_options;
extern const aredis_cmd_opts aredis_test_c_cmd_opts;
extern const aredis_reader_limits aredis_test_c_limits;
extern const aredis_pool_options aredis_test_c_pool_options;
extern const aredis_sentinel_options aredis_test_c_sentinel_options;
extern const aredis_cluster_options aredis_test_c_cluster_options;

const aredis_options aredis_test_c_options = AREDIS_OPTIONS_INIT;
const aredis_cmd_opts aredis_test_c_cmd_opts = AREDIS_CMD_OPTS_INIT;
const aredis_reader_limits aredis_test_c_limits = AREDIS_READER_LIMITS_INIT;
const aredis_pool_options aredis_test_c_pool_options = AREDIS_POOL_OPTIONS_INIT;
const aredis_sentinel_options aredis_test_c_sentinel_options = AREDIS_SENTINEL_OPTIONS_INIT;
const aredis_cluster_options aredis_test_c_cluster_options = AREDIS_CLUSTER_OPTIONS_INIT;
