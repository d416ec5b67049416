# Install layout: where `cmake --install` puts things, and the RUNPATH that lets the installed
# programs find the installed libvbus.so.0 on their own.
#
# The Debian packages install to /usr (debian/rules passes the directories debhelper uses); a
# plain `cmake --install` goes to CMAKE_INSTALL_PREFIX (/usr/local) or wherever --prefix says.

# RUNPATH. When the library directory is one the toolchain searches anyway (/usr/lib/<triplet>
# for the packages), programs get none: Debian forbids a RUNPATH to a system directory and
# the dynamic loader finds the library there. Otherwise (/usr/local/lib/<triplet>, a private
# prefix) the installed programs carry $ORIGIN/<bindir-to-libdir>, so the installed tree works
# wherever it is moved, without LD_LIBRARY_PATH or ldconfig. Build-tree binaries keep CMake's
# absolute build RUNPATH; `cmake --install` rewrites it.
set(VBUS_SYSTEM_LIBDIR OFF)
foreach(dir ${CMAKE_C_IMPLICIT_LINK_DIRECTORIES} ${CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES})
        if(dir STREQUAL CMAKE_INSTALL_FULL_LIBDIR)
                set(VBUS_SYSTEM_LIBDIR ON)
        endif()
endforeach()
if(NOT VBUS_SYSTEM_LIBDIR)
        file(RELATIVE_PATH vbus_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
        set(CMAKE_INSTALL_RPATH "$ORIGIN/${vbus_bin_to_lib}")
endif()

# Directories of the files in dist/. Relative values are below the prefix.
set(VBUS_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "where vchand.service goes (Debian 12: /lib/systemd/system)")
set(VBUS_BASH_COMPLETIONDIR "${CMAKE_INSTALL_DATADIR}/bash-completion/completions" CACHE STRING
    "where the bash completion goes")
option(VBUS_INSTALL_XENSIM "Install xensim (to <libexecdir>/xensim, with <bindir>/xensim)" ON)

# Man pages: troff made at build time from docs/man/*.md by go-md2man (Debian package
# go-md2man). AUTO: when go-md2man is found; ON: required (the Debian build); OFF: none.
set(VBUS_MAN AUTO CACHE STRING "Build and install the man pages (AUTO, ON, OFF)")
set_property(CACHE VBUS_MAN PROPERTY STRINGS AUTO ON OFF)

# sd_notify: with libsystemd (libsystemd-dev), vchand tells systemd when its socket listens and
# vchand.service is Type=notify; without it the unit is Type=exec. AUTO: when found; ON:
# required (the Debian build); OFF: never.
set(VBUS_SD_NOTIFY AUTO CACHE STRING "vchand notifies systemd of readiness (AUTO, ON, OFF)")
set_property(CACHE VBUS_SD_NOTIFY PROPERTY STRINGS AUTO ON OFF)
set(VBUS_HAVE_LIBSYSTEMD OFF)
if(NOT VBUS_SD_NOTIFY STREQUAL OFF)
        find_package(PkgConfig REQUIRED)
        if(VBUS_SD_NOTIFY STREQUAL ON)
                pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET GLOBAL libsystemd)
        else()
                pkg_check_modules(LIBSYSTEMD IMPORTED_TARGET GLOBAL libsystemd)
        endif()
        if(LIBSYSTEMD_FOUND)
                set(VBUS_HAVE_LIBSYSTEMD ON)
        endif()
endif()
