# Debian package: `make package` (scripts/package.sh) configures a build with
# -DCMAKE_INSTALL_PREFIX=/usr -DMANPAGE=ON and runs `cpack -G DEB` in it.
# Contents: /usr/bin/spillway, /lib/systemd/system/spillway.service, /etc/spillway/spillway.yaml
# (a conffile), spillway(8) generated from `spillway --help`, the docs; the maintainer scripts
# create the `spillway` system user and /var/lib/spillway, /var/log/spillway owned by it.
include(GNUInstallDirs)

option(MANPAGE "Generate the spillway(8) man page from spillway --help" OFF)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(SW_UNITDIR_DEFAULT "/lib/systemd/system") # Debian bookworm's systemdsystemunitdir
else()
  set(SW_UNITDIR_DEFAULT "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(SYSTEMD_UNITDIR "${SW_UNITDIR_DEFAULT}" CACHE PATH "Where the systemd unit is installed")

# With prefix /usr, GNUInstallDirs puts sysconfdir at /etc and localstatedir at /var.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/config/spillway.yaml
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/spillway)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/spillway.service DESTINATION ${SYSTEMD_UNITDIR})
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/configuration.md
              ${CMAKE_SOURCE_DIR}/docs/deploy.md ${CMAKE_SOURCE_DIR}/docs/runbook.md
              ${CMAKE_SOURCE_DIR}/docs/troubleshooting.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

if(MANPAGE)
  # spillway(8) from `spillway --help` (packaging/deb/mkman.py) plus FILES/SIGNALS/SEE ALSO.
  find_program(PYTHON3 python3 REQUIRED)
  set(SW_MAN ${CMAKE_BINARY_DIR}/spillway.8)
  add_custom_command(
    OUTPUT ${SW_MAN}.gz
    COMMAND ${PYTHON3} ${CMAKE_SOURCE_DIR}/packaging/deb/mkman.py $<TARGET_FILE:spillway>
            ${CMAKE_SOURCE_DIR}/packaging/deb/spillway.8.extra > ${SW_MAN}
    COMMAND gzip -9nf ${SW_MAN}
    DEPENDS spillway ${CMAKE_SOURCE_DIR}/packaging/deb/mkman.py
            ${CMAKE_SOURCE_DIR}/packaging/deb/spillway.8.extra
    COMMENT "Generating spillway(8) from spillway --help"
    VERBATIM)
  add_custom_target(manpage ALL DEPENDS ${SW_MAN}.gz)
  install(FILES ${SW_MAN}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
endif()

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "spillway")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "log shipping and retention agent")
set(CPACK_PACKAGE_DESCRIPTION
    "spillway tails Docker json-file, Kubernetes CRI and plain log files, parses and redacts\n\
them, buffers every record durably in SQLite (a crash loses and duplicates nothing) and ships\n\
them to Loki, Elasticsearch, S3-compatible stores or local files. It also rotates, compresses\n\
and prunes local logs and relieves disk pressure.")
set(CPACK_PACKAGE_CONTACT "spillway maintainers <maintainers@spillway.invalid>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Library dependencies from dpkg-shlibdeps; adduser for the maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/deb/conffiles;${CMAKE_SOURCE_DIR}/packaging/deb/postinst;${CMAKE_SOURCE_DIR}/packaging/deb/prerm;${CMAKE_SOURCE_DIR}/packaging/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}")
include(CPack)
