# The libaemp examples, built against an installed libaemp:
#   cmake -S . -B build -DCMAKE_PREFIX_PATH=<prefix> && cmake --build build
# (the prefix is not needed for /usr/local or /usr).  ping_pong, chat_client
# and ioserver are programs; chat_server.so is the tutorial's chat server
# module: `AEMP_MODULE_PATH=build aemp run nodeid chatsrv services chat::server::`.
# The copies in bin/ next to this file were built with libaemp itself.
cmake_minimum_required(VERSION 3.18)
project(libaemp_examples LANGUAGES C)
find_package(libaemp CONFIG REQUIRED)

foreach(prog ping_pong chat_client ioserver)
  add_executable(${prog} ${prog}.c)
  target_link_libraries(${prog} PRIVATE libaemp::aemp)
endforeach()
aemp_add_module(chat_server chat_server chat_server.c)
