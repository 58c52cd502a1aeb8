# The installed CMake package: find_package(GarbageTruck) gives the targets
# of the export set GarbageTruckTargets, namespaced GarbageTruck::.
# Included from the top-level CMakeLists.txt, which calls gt_package_install()
# once, after every add_subdirectory(): the config file it writes lists the
# dependencies the subdirectories declared, so it must come last.
#
# How a library joins the package (the broker's layers do, in
# broker/CMakeLists.txt):
#
#   set_target_properties(gtcore PROPERTIES EXPORT_NAME broker_core)   # GarbageTruck::broker_core
#   install(TARGETS gtcore EXPORT GarbageTruckTargets
#           ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
#   gt_package_pkgconfig(PQ CURL SODIUM MHD)      # the PkgConfig::<PREFIX> it links
#   gt_package_find_dependency(Threads)           # other packages it links (Threads::Threads)
#
# Every target of the tree an exported target links (gtbroker links
# garbagetruck, gtdelivery, gtpg, ...) must be installed into
# GarbageTruckTargets too, or CMake refuses to generate; a test library
# (gthttptest, gtpgtestdb, gtteststore) must not be linked at all outside
# the build tree: PRIVATE $<BUILD_INTERFACE:gthttptest>, since the PRIVATE
# links of a static library are exported as $<LINK_ONLY:...>.  Plain
# library names such as m need nothing.  A consumer then writes
#   find_package(GarbageTruck REQUIRED)
#   target_link_libraries(app PRIVATE GarbageTruck::broker)
# and tests/install/run builds such a program (tests/install/cmake-embed).
#
# A pkg-config file for an installed library: cmake/<name>.pc.in, made
# relocatable and installed with gt_package_pc_file(<name>).

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

# gt_package_pc_file(<name>): cmake/<name>.pc.in, configured (@ONLY) into
# <name>.pc in the current binary directory and installed in
# <libdir>/pkgconfig.  Relocatable: the template's prefix=@GT_PC_PREFIX@ is
# the .pc file's directory minus <libdir>/pkgconfig (${pcfiledir}/../..), so
# cmake --install --prefix P (fixed only when installing) and a moved tree
# both give the right paths; libdir=@GT_PC_LIBDIR@ and
# includedir=@GT_PC_INCLUDEDIR@ (<includedir>/garbagetruck) follow it.  An
# absolute libdir or includedir is where the files go whatever the prefix:
# kept as is.  Used for garbagetruck.pc (sdk/c) and garbagetruck-broker.pc (broker).
function(gt_package_pc_file name)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(GT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(GT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  else()
    file(RELATIVE_PATH up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
    string(REGEX REPLACE "/$" "" up "${up}")
    set(GT_PC_PREFIX "\${pcfiledir}/${up}")
    set(GT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  endif()
  if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(GT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}/garbagetruck")
  else()
    set(GT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}/garbagetruck")
  endif()
  configure_file(${GT_PACKAGE_TEMPLATE_DIR}/${name}.pc.in
                 ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
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
