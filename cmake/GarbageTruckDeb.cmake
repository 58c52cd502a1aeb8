# The Debian package: `cmake --build build --target package` writes
# build/garbagetruck_<version>_<arch>.deb with CPack (tests/package/run
# builds, inspects, installs and removes it).
#
# What it holds, under /usr: the daemon and gtctl, libgarbagetruck.so with
# its soname, the headers, pkg-config files and the CMake package (what
# `cmake --install` installs), plus what only a system install wants: the
# systemd unit, the system user (sysusers.d), /etc/garbagetruck/
# garbagetruck.conf as a conffile, a man page per binary, gtctl's bash
# completion, and the LICENSE as Debian's copyright file.  Its Depends are
# Debian's runtime libraries by name, from dpkg-shlibdeps.
#
# The system files have absolute destinations (/etc, /usr/lib/systemd): they
# are in the component "system", excluded from a plain `cmake --install
# --prefix P` (which must not write to /etc) and added by CPack alone.

set(GT_PACKAGING_DIR ${CMAKE_CURRENT_SOURCE_DIR}/packaging)

# Man pages, with the version filled in, compressed as Debian ships them
# (gzip -n: no timestamp, so the package's bytes do not change with the
# build time)
set(gt_man_pages garbagetruck.8 gtctl.1)
set(gt_man_outputs)
foreach(page ${gt_man_pages})
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  configure_file(${GT_PACKAGING_DIR}/man/${page} ${CMAKE_CURRENT_BINARY_DIR}/man/${page} @ONLY)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${out}
    COMMAND gzip -9n -c ${CMAKE_CURRENT_BINARY_DIR}/man/${page} > ${out}
    DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/man/${page}
    COMMENT "man page ${page}")
  list(APPEND gt_man_outputs ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(gt_man_pages ALL DEPENDS ${gt_man_outputs})

install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
install(FILES CHANGELOG.md README.md docs/CLUSTER.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The system component (absolute destinations, CPack only)
install(FILES ${GT_PACKAGING_DIR}/garbagetruck.service
  DESTINATION /usr/lib/systemd/system COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${GT_PACKAGING_DIR}/garbagetruck.sysusers
  DESTINATION /usr/lib/sysusers.d RENAME garbagetruck.conf COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${GT_PACKAGING_DIR}/garbagetruck.conf
  DESTINATION /etc/garbagetruck COMPONENT system EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME garbagetruck)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "GarbageTruck developers <garbagetruck@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "lease-based garbage collector for microservices")
set(CPACK_PACKAGE_DESCRIPTION
"GarbageTruck reclaims the resources services create (temp files, database
rows, blobs, sessions, cache entries) when their lease runs out or the last
reference goes away: a broker over ZeroMQ with a timer wheel, PostgreSQL
write-through, events and HTTP cleanup callbacks.  This package holds the
broker (garbagetruck, with a systemd unit), gtctl, and the C SDK
(libgarbagetruck, headers, pkg-config and CMake files).")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/garbagetruck/garbagetruck")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# One package: everything a plain install installs, then the system component
set(CPACK_INSTALL_CMAKE_PROJECTS
  "${CMAKE_BINARY_DIR};${PROJECT_NAME};ALL;/"
  "${CMAKE_BINARY_DIR};${PROJECT_NAME};system;/")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd-sysusers makes the user; adduser where systemd is absent
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${GT_PACKAGING_DIR}/debian/postinst
  ${GT_PACKAGING_DIR}/debian/prerm
  ${GT_PACKAGING_DIR}/debian/postrm
  ${GT_PACKAGING_DIR}/debian/conffiles
  ${GT_PACKAGING_DIR}/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
