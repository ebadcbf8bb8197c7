# The library sources the RESP reader needs, and nothing else. The libFuzzer
# target (fuzz/CMakeLists.txt) compiles them in, instrumented for coverage;
# the normal build compiles the same list into test_unit_fuzz_replay
# (tests/CMakeLists.txt) without linking the library, so a source the reader
# comes to need and this list misses breaks `make test`, not only `make fuzz`.
set(AREDIS_READER_SOURCES
  ${PROJECT_SOURCE_DIR}/src/proto/reader.c
  ${PROJECT_SOURCE_DIR}/src/proto/reply.c
  ${PROJECT_SOURCE_DIR}/src/util/alloc.c
  ${PROJECT_SOURCE_DIR}/src/util/cache.c)
