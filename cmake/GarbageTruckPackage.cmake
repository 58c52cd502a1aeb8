# The installed CMake package: find_package(GarbageTruck) gives the targets
# of the export set GarbageTruckTargets, namespaced GarbageTruck::.
# Included from the top-level CMakeLists.txt, which calls gt_package_install()
# once, after every add_subdirectory(): the config file it writes lists the
# dependencies the subdirectories declared, so it must come last.
#
# How a library joins the package (the broker's, later, from broker/):
#
#   set_target_properties(gtbroker PROPERTIES EXPORT_NAME broker)   # GarbageTruck::broker
#   install(TARGETS gtbroker EXPORT GarbageTruckTargets
#           ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
#   gt_package_pkgconfig(PQ CURL SODIUM MHD)      # the PkgConfig::<PREFIX> it links
#   gt_package_find_dependency(Threads)           # other packages it links (Threads::Threads)
#
# Every target of the tree an exported target links (gtbroker links
# garbagetruck, gtdelivery, gtpg) must be installed into GarbageTruckTargets
# too, or CMake refuses to generate; plain library names such as m need
# nothing.  A consumer then writes
#   find_package(GarbageTruck REQUIRED)
#   target_link_libraries(app PRIVATE GarbageTruck::broker)
# and tests/install/run builds such a program (its marked place).

include(CMakePackageConfigHelpers)

# The templates sit next to this file
set(GT_PACKAGE_TEMPLATE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(GT_PACKAGE_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/GarbageTruck)

# gt_package_pkgconfig(<PREFIX>...): exported targets link PkgConfig::<PREFIX>
# (made by gt_require() in the top-level CMakeLists.txt); the installed config
# makes the same imported targets with pkg-config.
function(gt_package_pkgconfig)
  foreach(prefix ${ARGN})
    get_property(module GLOBAL PROPERTY GT_PKGCONFIG_MODULE_${prefix})
    if(NOT module)
      message(FATAL_ERROR "gt_package_pkgconfig: ${prefix} was not found with gt_require()")
    endif()
    set_property(GLOBAL APPEND PROPERTY GT_PACKAGE_PKGCONFIG "${prefix}=${module}")
  endforeach()
endfunction()

# gt_package_find_dependency(<Package>...): exported targets link targets of
# these CMake packages; the installed config finds them with find_dependency.
function(gt_package_find_dependency)
  set_property(GLOBAL APPEND PROPERTY GT_PACKAGE_FIND_DEPENDENCIES ${ARGN})
endfunction()

# Install GarbageTruckConfig.cmake, its version file and the export set
# under <libdir>/cmake/GarbageTruck.  Call once, at the end.
function(gt_package_install)
  get_property(GT_PACKAGE_PKGCONFIG GLOBAL PROPERTY GT_PACKAGE_PKGCONFIG)
  get_property(GT_PACKAGE_FIND_DEPENDENCIES GLOBAL PROPERTY GT_PACKAGE_FIND_DEPENDENCIES)
  # Several libraries may need the same dependency: find it once
  if(GT_PACKAGE_PKGCONFIG)
    list(REMOVE_DUPLICATES GT_PACKAGE_PKGCONFIG)
  endif()
  if(GT_PACKAGE_FIND_DEPENDENCIES)
    list(REMOVE_DUPLICATES GT_PACKAGE_FIND_DEPENDENCIES)
  endif()
  configure_package_config_file(
    ${GT_PACKAGE_TEMPLATE_DIR}/GarbageTruckConfig.cmake.in
    ${PROJECT_BINARY_DIR}/GarbageTruckConfig.cmake
    INSTALL_DESTINATION ${GT_PACKAGE_CMAKEDIR})
  # 0.x: the soname's number is the major version (SOVERSION), so is the
  # promise of compatibility
  write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/GarbageTruckConfigVersion.cmake
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMajorVersion)
  install(FILES
    ${PROJECT_BINARY_DIR}/GarbageTruckConfig.cmake
    ${PROJECT_BINARY_DIR}/GarbageTruckConfigVersion.cmake
    DESTINATION ${GT_PACKAGE_CMAKEDIR})
  install(EXPORT GarbageTruckTargets
    NAMESPACE GarbageTruck::
    FILE GarbageTruckTargets.cmake
    DESTINATION ${GT_PACKAGE_CMAKEDIR})
endfunction()
