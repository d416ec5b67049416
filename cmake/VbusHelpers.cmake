# Warning set, sanitizer presets and test/fuzzer registration helpers.

set(VBUS_WARNINGS
        -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings
        -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
        -Wformat=2 -Wundef -Wvla -Wnull-dereference -Wimplicit-fallthrough
        -Wno-unused-parameter -Wno-missing-field-initializers)
add_compile_options(${VBUS_WARNINGS})
add_compile_definitions(_GNU_SOURCE)
if(VBUS_WERROR)
        add_compile_options(-Werror)
endif()

if(VBUS_SANITIZE)
        add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                            -fno-omit-frame-pointer)
        add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()

if(VBUS_FUZZ AND NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "VBUS_FUZZ=ON needs clang (libFuzzer): configure with CC=clang")
endif()
if(VBUS_FUZZ)
        # Coverage instrumentation for everything the harnesses reach, not only the harnesses.
        add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# vbus_add_unit_test(NAME SOURCES... [LIBS ...]): a cmocka test executable run by ctest.
function(vbus_add_unit_test name)
        cmake_parse_arguments(T "" "" "LIBS" ${ARGN})
        add_executable(${name} ${T_UNPARSED_ARGUMENTS})
        target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
        add_test(NAME ${name} COMMAND ${name})
        set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
endfunction()

# vbus_add_fuzzer(NAME SOURCE CORPUS_DIR [LIBS ...]): with VBUS_FUZZ a libFuzzer binary;
# always a replay binary (the same harness with a small main) that ctest runs over the corpus,
# so every corpus and regression input is an ordinary test in every build.
function(vbus_add_fuzzer name source corpus)
        cmake_parse_arguments(F "" "" "LIBS" ${ARGN})
        add_executable(${name}-replay ${source} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay-main.c)
        target_link_libraries(${name}-replay PRIVATE ${F_LIBS})
        add_test(NAME ${name}-corpus COMMAND ${name}-replay ${corpus})
        set_tests_properties(${name}-corpus PROPERTIES LABELS fuzz TIMEOUT 300)
        if(VBUS_FUZZ)
                add_executable(${name} ${source})
                target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
                target_link_options(${name} PRIVATE -fsanitize=fuzzer)
                target_link_libraries(${name} PRIVATE ${F_LIBS})
        endif()
endfunction()
