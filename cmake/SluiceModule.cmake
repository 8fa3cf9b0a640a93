# sluice_module(NAME DEPS dep... PRIVATE_DEPS dep...): one library per top-level module, with its public
# headers in <module>/include/sluice/<module>/ visible only to targets that link it. A module links only
# what lies below it (DESIGN.md), so an upward #include does not compile; tests/layering checks that.
# A module whose issue has not landed yet has no sources and is an INTERFACE library with the same
# dependency edges, so the stack is fixed from the start.
function(sluice_module name)
  cmake_parse_arguments(ARG "" "" "DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cc)
  if(sources)
    add_library(sluice_${name} STATIC ${sources})
    target_include_directories(sluice_${name}
      PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_link_libraries(sluice_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  else()
    add_library(sluice_${name} INTERFACE)
    target_include_directories(sluice_${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(sluice_${name} INTERFACE ${ARG_DEPS})
  endif()
endfunction()
