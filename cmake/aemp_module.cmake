# aemp_module.cmake - the CMake helper that builds a loadable module, shared
# by the libaemp build tree and the installed package (libaemp-config.cmake).
#
# The including file sets AEMP_MODULE_INCLUDE_DIRS (where aemp.h, aemp_module.h
# and ev.h are) and AEMP_MODULE_LINK (targets giving jansson's headers)
# before calling the functions.

# aemp_add_module(TARGET FILENAME SOURCES...): a module as a MODULE library
# called FILENAME.so (the name rule: "My::Mod" -> my_mod.so).  It does not
# link libaemp: the aemp_* symbols come from the program that loads it.
function(aemp_add_module target filename)
  add_library(${target} MODULE ${ARGN})
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME ${filename} SUFFIX ".so")
  target_include_directories(${target} PRIVATE ${AEMP_MODULE_INCLUDE_DIRS})
  target_link_libraries(${target} PRIVATE ${AEMP_MODULE_LINK})
endfunction()
