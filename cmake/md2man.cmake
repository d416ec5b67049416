# md2man: turns one page of docs/man/ into troff with go-md2man (run by dist/CMakeLists.txt):
#   cmake -DIN=x.md -DOUT=x.8 -DMD2MAN=go-md2man -DVERSION=0.1.0 -DDATE="December 2026" -P md2man.cmake
# The Markdown pages start with
# "# NAME(SECTION) — one-line description" so that they read well on GitHub; go-md2man wants
# a title block ("% NAME SECTION ...") and a NAME section that whatis/apropos can parse
# ("name - description"), so that line is rewritten before go-md2man runs. go-md2man emits
# tables for tbl(1) without the "'\" t" line that tells man(1) to run tbl: added when needed.
file(READ "${IN}" md)
string(REGEX MATCH "^# ([A-Za-z0-9_.-]+)\\(([0-9a-z]+)\\) — ([^\n]*)\n" head "${md}")
if(NOT head)
        message(FATAL_ERROR "${IN}: the first line must be '# name(section) — description'")
endif()
set(name ${CMAKE_MATCH_1})
set(section ${CMAKE_MATCH_2})
set(desc ${CMAKE_MATCH_3})
string(LENGTH "${head}" head_len)
string(SUBSTRING "${md}" ${head_len} -1 body)
string(TOUPPER "${name}" title)
file(WRITE "${OUT}.md"
     "% ${title} ${section} \"${DATE}\" \"vbus ${VERSION}\" \"vbus manual\"\n\n## NAME\n\n${name} - ${desc}\n${body}")
execute_process(COMMAND "${MD2MAN}" -in "${OUT}.md" -out "${OUT}.tmp" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${MD2MAN} failed on ${IN}")
endif()
file(READ "${OUT}.tmp" roff)
# go-md2man leaves a text line that starts with ' or . as it is, and roff takes it for a
# request (vbusctl(1): "'NAME'), a reset, ...", vbus-bridge(1): "..."): \& in front makes it
# text. go-md2man's own requests are a dot and letters (.PP, .TP, .nf), so a dot followed by
# anything else is text; a text line starting with a dot and a letter is not told apart
# (lintian's groff-message and `man --warnings` in tests/pkg catch one).
string(REPLACE "\n'" "\n\\&'" roff "${roff}")
string(REGEX REPLACE "\n\\.([^A-Za-z])" "\n\\\\&.\\1" roff "${roff}")
if(roff MATCHES "\n\\.TS")
        set(roff "'\\\" t\n${roff}")
endif()
file(WRITE "${OUT}" "${roff}")
file(REMOVE "${OUT}.tmp" "${OUT}.md")
